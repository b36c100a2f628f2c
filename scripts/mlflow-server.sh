#!/usr/bin/env bash
# A real MLflow tracking server for fairlab's tests and for trying the REST store locally.
#
# Usage: scripts/mlflow-server.sh start [--basic-auth] [--port P] [--workers W] | stop | status
#   start   install the pinned mlflow (3.17.2, with its [auth] extra) into the venv when missing,
#           start `mlflow server` on 127.0.0.1 (a free port unless --port) with a sqlite backend and a
#           local artifact root under $FAIRLAB_MLFLOW_DIR, wait until /health answers, and print the
#           environment to use (`export MLFLOW_TRACKING_URI=http://127.0.0.1:PORT`). Job execution is
#           off (MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false) and the SQL pool is widened, as MLflow
#           recommends for many clients. --basic-auth starts `--app-name basic-auth` with an admin
#           user whose credentials are printed too (MLFLOW_TRACKING_USERNAME/PASSWORD). --workers
#           sets uvicorn's worker processes (default 2; MLflow's own default is 4).
#   stop    stop the server started in $FAIRLAB_MLFLOW_DIR (by its recorded PID).
#   status  exit 0 when that server answers /health.
#
# Environment: FAIRLAB_MLFLOW_DIR (state, logs, PID; default target/mlflow-server), FAIRLAB_VENV
# (default .venv, shared with scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

MLFLOW_VERSION=3.17.2
DIR=${FAIRLAB_MLFLOW_DIR:-$PWD/target/mlflow-server}
VENV=${FAIRLAB_VENV:-.venv}
ADMIN_PASSWORD=fairlab-admin-password

install() {
  if "$VENV/bin/python" -c "import mlflow, flask_wtf, sys; sys.exit(mlflow.__version__ != '$MLFLOW_VERSION')" 2>/dev/null; then
    return
  fi
  echo "== installing mlflow[auth]==$MLFLOW_VERSION into $VENV (once; about 1-2 minutes)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "mlflow[auth]==$MLFLOW_VERSION"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

healthy() { # PORT
  python3 - "$1" <<'PY'
import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=2).status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

start() {
  local port="" auth=0 workers=2
  while [ $# -gt 0 ]; do
    case "$1" in
      --basic-auth) auth=1; shift ;;
      --port) port=${2:-}; shift 2 ;;
      --workers) workers=${2:-}; shift 2 ;;
      *) echo "mlflow-server.sh: unknown option $1" >&2; exit 2 ;;
    esac
  done
  install
  mkdir -p "$DIR"
  if [ -f "$DIR/server.pid" ] && kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null; then
    echo "mlflow-server.sh: a server from $DIR is running (pid $(cat "$DIR/server.pid")); stop it first" >&2
    exit 1
  fi
  port=${port:-$(free_port)}
  local args=(server --host 127.0.0.1 --port "$port" --workers "$workers"
    --backend-store-uri "sqlite:///$DIR/mlflow.db" --artifacts-destination "$DIR/artifacts")
  if [ "$auth" = 1 ]; then
    cat > "$DIR/auth.ini" <<INI
[mlflow]
default_permission = READ
database_uri = sqlite:///$DIR/basic_auth.db
admin_username = admin
admin_password = $ADMIN_PASSWORD
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
    export MLFLOW_AUTH_CONFIG_PATH=$DIR/auth.ini MLFLOW_FLASK_SERVER_SECRET_KEY=fairlab-test-secret
    args+=(--app-name basic-auth)
  fi
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
  MLFLOW_SQLALCHEMYSTORE_POOL_SIZE=20 MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW=40 \
    nohup "$VENV/bin/mlflow" "${args[@]}" > "$DIR/server.log" 2>&1 &
  echo $! > "$DIR/server.pid"
  echo "$port" > "$DIR/server.port"
  for _ in $(seq 1 900); do   # up to 90 s
    if healthy "$port"; then
      echo "== mlflow $MLFLOW_VERSION serving on http://127.0.0.1:$port (pid $(cat "$DIR/server.pid"), data in $DIR)" >&2
      echo "export MLFLOW_TRACKING_URI=http://127.0.0.1:$port"
      if [ "$auth" = 1 ]; then
        echo "export MLFLOW_TRACKING_USERNAME=admin MLFLOW_TRACKING_PASSWORD=$ADMIN_PASSWORD"
      fi
      return
    fi
    if ! kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null; then
      echo "mlflow-server.sh: the server exited; the end of $DIR/server.log:" >&2
      tail -20 "$DIR/server.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "mlflow-server.sh: no answer on /health after 90 s; the end of $DIR/server.log:" >&2
  tail -20 "$DIR/server.log" >&2
  stop
  exit 1
}

stop() {
  [ -f "$DIR/server.pid" ] || return 0
  local pid; pid=$(cat "$DIR/server.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$DIR/server.pid"
  echo "== mlflow server stopped" >&2
}

status() {
  [ -f "$DIR/server.port" ] && healthy "$(cat "$DIR/server.port")"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  status) status ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
esac
