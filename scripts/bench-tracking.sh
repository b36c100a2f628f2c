#!/usr/bin/env bash
# Side-by-side benchmark of logging metric points to a real MLflow tracking server (mlflow 3.17.2,
# sqlite, MLflow's default of 4 workers), alternating in one run on the same server:
#   - `fairlab bench tracking --json`: one `log_metric` call per point, as a training loop logs
#     (points/s until flushed, per-call cost), and the server's ceiling measured in the same run
#     (the same points pre-encoded as log-batch bodies of 1000, 1/2/4/8 requests in flight);
#   - scripts/bench/tracking_mlflow.py: MLflow's Python client, `MlflowClient.log_batch` in chunks
#     of 1000 for the same points, and per-point `mlflow.log_metric(..., synchronous=False)`.
# Then prints a markdown table (medians over the repetitions) with the goals. See docs/benchmarks.md.
#
# Usage: scripts/bench-tracking.sh [--points N] [--runs R[,R...]] [--repeat K] [--async-points M]
#                                  [--workers W] [--server URL]
#   --points N        metric points per run (default 10000)
#   --runs R,...      runs logging at once, one set of measurements per count (default 1,4)
#   --repeat K        alternating repetitions of each side (default 3); the table shows medians
#   --async-points M  points for Python's per-point asynchronous log_metric, measured with the first
#                     runs count (default 500: it sends one request per point; 0 skips it)
#   --workers W       uvicorn workers of the server the script starts (default 4)
#   --server URL      measure this running server instead of starting one (it is left running)
#
# Environment: FAIRLAB_BIN (the fairlab binary to time; default: `cargo build --release` with
# CARGO_TARGET_DIR defaulting to ~/.cache/fairlab/target, the binary copied to a temporary folder
# before timing), FAIRLAB_VENV (the venv with mlflow, default .venv; installed when missing),
# FAIRLAB_MLFLOW_DIR (the started server's data, default target/mlflow-bench-tracking, emptied
# first), BENCH_OUT (folder for the report, default target/bench).
# A quick check of the script: scripts/bench-tracking.sh --points 2000 --runs 1 --repeat 1 --async-points 50
set -euo pipefail
cd "$(dirname "$0")/.."

POINTS=10000
RUNS=1,4
REPEAT=3
ASYNC_POINTS=500
WORKERS=4
SERVER=
COMMAND="scripts/bench-tracking.sh${*:+ $*}"
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --points) POINTS=${2:-}; shift 2 ;;
    --runs) RUNS=${2:-}; shift 2 ;;
    --repeat) REPEAT=${2:-}; shift 2 ;;
    --async-points) ASYNC_POINTS=${2:-}; shift 2 ;;
    --workers) WORKERS=${2:-}; shift 2 ;;
    --server) SERVER=${2:-}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench-tracking.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
count() { [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ] || { echo "bench-tracking.sh: $1 must be a count of at least $3" >&2; exit 2; }; }
count --points "$POINTS" 1
count --repeat "$REPEAT" 1
count --async-points "$ASYNC_POINTS" 0
count --workers "$WORKERS" 1
IFS=, read -r -a RUN_COUNTS <<< "$RUNS"
for r in "${RUN_COUNTS[@]}"; do count --runs "$r" 1; done

export FAIRLAB_VENV=${FAIRLAB_VENV:-.venv}
PYTHON=$FAIRLAB_VENV/bin/python
TMP=$(mktemp -d)
cleanup=("rm -rf $TMP")
trap 'for c in "${cleanup[@]}"; do $c || true; done' EXIT

if [ -n "${FAIRLAB_BIN:-}" ]; then
  cp "$FAIRLAB_BIN" "$TMP/fairlab"
else
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/fairlab/target}
  echo "== cargo build --release" >&2
  cargo build --release --quiet --bin fairlab
  cp "$CARGO_TARGET_DIR/release/fairlab" "$TMP/fairlab"
fi
FAIRLAB=$TMP/fairlab

if [ -n "$SERVER" ]; then
  export MLFLOW_TRACKING_URI=$SERVER
  SERVER_NOTE="a running server ($SERVER)"
else
  export FAIRLAB_MLFLOW_DIR=${FAIRLAB_MLFLOW_DIR:-$PWD/target/mlflow-bench-tracking}
  scripts/mlflow-server.sh stop >/dev/null 2>&1 || true
  rm -rf "$FAIRLAB_MLFLOW_DIR"
  cleanup+=("scripts/mlflow-server.sh stop")
  server_env=$(scripts/mlflow-server.sh start --workers "$WORKERS")
  eval "$server_env"
  SERVER_NOTE="started by the script: sqlite, $WORKERS workers, fresh database"
fi
"$PYTHON" -c "import mlflow" 2>/dev/null || { echo "bench-tracking.sh: $PYTHON cannot import mlflow (set FAIRLAB_VENV)" >&2; exit 2; }

OUT_DIR=${BENCH_OUT:-target/bench}
mkdir -p "$OUT_DIR"
RAW="$OUT_DIR/tracking-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
python_side() { # RUNS ASYNC_POINTS
  echo "== $1 run(s): Python" >&2
  "$PYTHON" scripts/bench/tracking_mlflow.py --points "$POINTS" --runs "$1" --async-points "$2" | tee -a "$RAW"
}
fairlab_side() { # RUNS
  echo "== $1 run(s): fairlab" >&2
  "$FAIRLAB" bench tracking --points "$POINTS" --runs "$1" --json | tee -a "$RAW"
}
for runs in "${RUN_COUNTS[@]}"; do
  async=0
  [ "$runs" = "${RUN_COUNTS[0]}" ] && async=$ASYNC_POINTS
  for rep in $(seq "$REPEAT"); do
    echo "== repetition $rep/$REPEAT" >&2
    if (( rep % 2 )); then python_side "$runs" "$async"; fairlab_side "$runs"
    else fairlab_side "$runs"; python_side "$runs" "$async"; fi
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

REPORT="${RAW%.jsonl}.md"
MACHINE="$(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), load average $LOAD_BEFORE before, $LOAD_AFTER after"
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo ' with uncommitted changes')"
"$PYTHON" - "$RAW" "$COMMAND" "$MACHINE" "$SERVER_NOTE" "$COMMIT" > "$REPORT" <<'PY'
import json, statistics, sys
from collections import defaultdict
raw, command, machine, server, commit = sys.argv[1:]
rows = [json.loads(line) for line in open(raw) if line.strip()]
fair, py = defaultdict(list), defaultdict(list)
for r in rows:
    (py if r.get("side") == "python" else fair)[r["runs"]].append(r)
med = statistics.median
span = lambda xs: f"{med(xs):,.0f} ({min(xs):,.0f}–{max(xs):,.0f})"
first = next(iter(fair.values()))[0]
print(f"Command: `{command}`  \nMachine: {machine}  \nServer: MLflow {first['mlflow_version']}, {server}  \n"
      f"fairlab: {commit}; Python: MLflow {next(iter(py.values()))[0]['mlflow_version']} client\n")
print(f"Medians of {len(next(iter(fair.values())))} alternating repetitions (min–max in brackets). Ratios: medians of "
      "the per-repetition ratios.\n")
print("| runs × points | side | points/s | per-call µs median (p99) | fairlab / side |\n|---|---|---|---|---|")
goals = []
for runs in fair:
    f, p = fair[runs], py[runs]
    n = f"{runs} × {f[0]['points_per_run']}"
    rate = [x["fairlab"]["points_per_s"] for x in f]
    call = f"{med(x['fairlab']['call_us']['median'] for x in f):.2f} ({med(x['fairlab']['call_us']['p99'] for x in f):.2f})"
    over_py = med(a["fairlab"]["points_per_s"] / b["log_batch"]["points_per_s"] for a, b in zip(f, p))
    over_ceiling = med(x["fairlab_over_ceiling"] for x in f)
    in_flight = sorted({x["ceiling"]["in_flight"] for x in f})
    tried = ",".join(str(t["in_flight"]) for t in f[0]["ceiling"]["trials"])
    print(f"| {n} | fairlab, `log_metric` per point | {span(rate)} | {call} | 1.00 |")
    print(f"| {n} | Python `MlflowClient.log_batch`, chunks of 1000 | "
          f"{span([x['log_batch']['points_per_s'] for x in p])} | – | {over_py:.2f} |")
    print(f"| {n} | server ceiling: pre-encoded log-batch, best of {tried} in flight (best: {'/'.join(map(str, in_flight))}) | "
          f"{span([x['ceiling']['points_per_s'] for x in f])} | – | {over_ceiling:.2f} |")
    a = [x["log_metric_async"] for x in p if "log_metric_async" in x]
    if a:
        print(f"| 1 × {a[0]['points']} | Python `mlflow.log_metric(synchronous=False)` per point "
              f"(MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS={a[0]['buffering_seconds'] or 'unset'}) | "
              f"{span([x['points_per_s'] for x in a])} | "
              f"{med(x['call_us']['median'] for x in a):.1f} ({med(x['call_us']['p99'] for x in a):.1f}) | – |")
    mark = lambda ok: "met" if ok else "**missed**"
    median_call = med(x["fairlab"]["call_us"]["median"] for x in f)
    goals.append(f"- {n}: fairlab / Python log_batch = {over_py:.2f} (goal ≥ 1.5: {mark(over_py >= 1.5)}); "
                 f"fairlab / ceiling = {over_ceiling:.2f} (goal ≥ 0.8: {mark(over_ceiling >= 0.8)}); "
                 f"median call {median_call:.2f} µs (goal < 10: {mark(median_call < 10)})")
print("\nGoals:\n" + "\n".join(goals))
PY
cat "$REPORT"
echo "report: $REPORT (raw: $RAW)" >&2
