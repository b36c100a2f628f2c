#!/usr/bin/env bash
# Sweep overhead benchmark: a sweep of trivial trials (the quickstart with 1 epoch on cached
# features, leakage probes off), run through the local executor and, with --slurm, through the local
# Slurm, with the embedded tracker. See docs/benchmarks.md.
#
# Usage: scripts/bench-sweep.sh [TRIALS] [--jobs N] [--slurm]
#   TRIALS   trials in the sweep (default 100)
#   --jobs N trials at once (default 2)
#   --slurm  also run it as a Slurm job array (needs `scripts/slurm-local.sh start` and SLURM_CONF),
#            and time an array of empty tasks the same way: Slurm's own cost per task
#
# Overhead per trial = (wall time x jobs - the trials' own work) / trials, where a trial's own work
# is the time its process spends in the experiment runner (data, cached features, training,
# evaluation, and the child run's own logging), as journaled in `duration_ms`. Everything else is
# overhead: process start, reading the plan, the journal, the parent run, the driver's scheduling
# and polling, and slots left idle. Prints a markdown table; saves it with the machine to
# target/bench/sweep-<date>.md.
#
# Environment: CARGO_TARGET_DIR (default ~/.cache/fairlab/target, as .ci/run), FAIRLAB_BIN (a
# fairlab binary to time instead of building one).
set -euo pipefail
cd "$(dirname "$0")/.."

TRIALS=100
JOBS=2
SLURM=0
COMMAND="scripts/bench-sweep.sh${*:+ $*}"
while [ $# -gt 0 ]; do
  case "$1" in
    --jobs) JOBS=${2:-}; shift $(( $# > 1 ? 2 : 1 )) ;;
    --slurm) SLURM=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "bench-sweep.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) TRIALS=$1; shift ;;
  esac
done
for n in "$TRIALS" "$JOBS"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "bench-sweep.sh: not a positive count: $n" >&2; exit 2; }
done

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/fairlab/target}
if [ -z "${FAIRLAB_BIN:-}" ]; then
  cargo build --release --quiet --bin fairlab
  FAIRLAB_BIN=$CARGO_TARGET_DIR/release/fairlab
fi
REPO=$PWD
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The quickstart with absolute paths, 1 epoch, no leakage probes, then the sweep over seeds.
python3 - "$REPO" "$WORK" "$TRIALS" <<'PY'
import sys
repo, work, trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
text = open(f"{repo}/experiments/quickstart.yaml").read()
for old, new in [("root: data/nih1000", f"root: {repo}/data/nih1000"),
                 ("weights: models/efficientnet-lite0", f"weights: {repo}/models/efficientnet-lite0"),
                 ("cache_dir: .fairlab/features", f"cache_dir: {work}/features"),
                 ("epochs: 30", "epochs: 1"),
                 ("threshold: 0.5", "threshold: 0.5\n  leakage: false")]:
    assert old in text, old
    text = text.replace(old, new)
open(f"{work}/trial.yaml", "w").write(text)
seeds = ", ".join(str(i) for i in range(trials))
open(f"{work}/sweep.yaml", "w").write(text + f"""
sweep:
  method: grid
  metric: {{name: test_auc, goal: maximize}}
  parameters:
    seed: {{values: [{seeds}]}}
""")
PY
cd "$WORK"
echo "== extracting the features once (not timed)" >&2
"$FAIRLAB_BIN" run trial.yaml >/dev/null

rows=()
measure() { # EXECUTOR EXTRA_ARGS...
  local executor=$1; shift
  rm -rf .fairlab/sweeps mlruns
  echo "== $TRIALS trials, --jobs $JOBS, $executor" >&2
  local start end
  start=$(date +%s.%N)
  "$FAIRLAB_BIN" run sweep.yaml --jobs "$JOBS" --executor "$executor" "$@" >/dev/null 2>"$executor.log" || {
    echo "bench-sweep.sh: the $executor sweep failed:" >&2; tail -5 "$executor.log" >&2; exit 1; }
  end=$(date +%s.%N)
  rows+=("$(python3 - "$executor" "$start" "$end" "$JOBS" <<'PY'
import glob, json, sys
executor, start, end, jobs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
report = json.load(open(glob.glob(".fairlab/sweeps/*/results.json")[0]))
trials = report["trials"]
assert all(t["state"] == "FINISHED" for t in trials), "not every trial finished"
work = sum(t["duration_ms"] for t in trials) / 1000
wall = end - start
n = len(trials)
overhead_ms = (wall * jobs - work) / n * 1000
print(f"| {executor} | {n} | {jobs} | {wall:.1f} | {work:.1f} | {work / n * 1000:.0f} | {overhead_ms:.0f} |")
PY
)")
}

# Slurm's own floor: the same array of tasks that do nothing (`true`), timed the same way.
slurm_floor() {
  echo "== $TRIALS empty Slurm array tasks, %$JOBS (Slurm's own dispatch cost)" >&2
  local start end job
  start=$(date +%s.%N)
  job=$(sbatch --parsable --array="0-$((TRIALS - 1))%$JOBS" --output=/dev/null --wrap true)
  while squeue --noheader --jobs="$job" 2>/dev/null | grep -q .; do sleep 0.2; done
  end=$(date +%s.%N)
  rows+=("$(python3 -c "
n, jobs, wall = $TRIALS, $JOBS, $end - $start
print(f'| slurm, empty tasks (\`sbatch --array --wrap true\`) | {n} | {jobs} | {wall:.1f} | 0.0 | 0 | {wall * jobs / n * 1000:.0f} |')")")
}

measure local
if [ "$SLURM" = 1 ]; then
  measure slurm --set sweep.execution.slurm.poll_seconds=0.2
  slurm_floor
fi

cd "$REPO"
mkdir -p target/bench
OUT=target/bench/sweep-$(date -u +%Y%m%d-%H%M%S).md
{
  echo "Command: \`$COMMAND\` ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $("$FAIRLAB_BIN" --version))"
  echo
  echo "| executor | trials | jobs | wall s | trials' own work s | work per trial ms | overhead per trial ms |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee "$OUT"
echo "saved to $OUT" >&2
