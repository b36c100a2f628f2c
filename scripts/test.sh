#!/usr/bin/env bash
# The full test suite, from a fresh clone: installs what the tests need (the real MLflow Python
# client in .venv, so a test can check that MLflow reads what fairlab writes; a real `mlflow server`
# through scripts/mlflow-server.sh for the REST store; a real one-node Slurm through
# scripts/slurm-local.sh for the sweep's job-array test), then runs every Rust test, clippy and
# rustfmt. Usage: scripts/test.sh
#
# Slurm needs root and apt the first time. FAIRLAB_SKIP_SLURM=1 runs everything else (the Slurm test
# then reports itself skipped); otherwise a Slurm that cannot be started fails the suite. A Slurm
# this script started is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

MLFLOW_VERSION=3.17.2
VENV=${FAIRLAB_VENV:-.venv}
if ! "$VENV/bin/python" -c "import mlflow, sys; sys.exit(mlflow.__version__ != '$MLFLOW_VERSION')" 2>/dev/null; then
  echo "== installing mlflow==$MLFLOW_VERSION into $VENV (once; about 1-2 minutes)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "mlflow==$MLFLOW_VERSION"
fi
export FAIRLAB_PYTHON="$PWD/$VENV/bin/python"
export FAIRLAB_REQUIRE_MLFLOW=1

cleanup=()
trap 'for c in "${cleanup[@]}"; do $c || true; done' EXIT

# A real MLflow server (sqlite, proxied artifacts) for the REST store's tests.
export FAIRLAB_MLFLOW_DIR=${FAIRLAB_MLFLOW_DIR:-$PWD/target/mlflow-test-server}
scripts/mlflow-server.sh stop >/dev/null 2>&1 || true
FAIRLAB_MLFLOW_DIR=$FAIRLAB_MLFLOW_DIR-auth scripts/mlflow-server.sh stop >/dev/null 2>&1 || true
FAIRLAB_MLFLOW_SERVER=$(scripts/mlflow-server.sh start | sed -n 's/^export MLFLOW_TRACKING_URI=//p')
export FAIRLAB_MLFLOW_SERVER
cleanup+=("scripts/mlflow-server.sh stop")
# And one with basic auth (`--app-name basic-auth`), for the credential tests.
auth_env=$(FAIRLAB_MLFLOW_DIR=$FAIRLAB_MLFLOW_DIR-auth scripts/mlflow-server.sh start --basic-auth)
FAIRLAB_MLFLOW_AUTH_SERVER=$(sed -n 's/^export MLFLOW_TRACKING_URI=//p' <<< "$auth_env")
FAIRLAB_MLFLOW_AUTH_USERNAME=$(sed -n 's/.*MLFLOW_TRACKING_USERNAME=\([^ ]*\).*/\1/p' <<< "$auth_env")
FAIRLAB_MLFLOW_AUTH_PASSWORD=$(sed -n 's/.*MLFLOW_TRACKING_PASSWORD=\([^ ]*\).*/\1/p' <<< "$auth_env")
export FAIRLAB_MLFLOW_AUTH_SERVER FAIRLAB_MLFLOW_AUTH_USERNAME FAIRLAB_MLFLOW_AUTH_PASSWORD
cleanup+=("env FAIRLAB_MLFLOW_DIR=$FAIRLAB_MLFLOW_DIR-auth scripts/mlflow-server.sh stop")

if [ "${FAIRLAB_SKIP_SLURM:-0}" != 1 ]; then
  if ! scripts/slurm-local.sh status >/dev/null 2>&1; then
    cleanup+=("scripts/slurm-local.sh stop")
  fi
  eval "$(scripts/slurm-local.sh start)"
  export FAIRLAB_REQUIRE_SLURM=1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --workspace --quiet
