#!/usr/bin/env bash
# Side-by-side benchmark of `fairlab metrics` against the Python reference (pandas + scikit-learn +
# fairlearn), on one generated predictions CSV, in one run. See docs/benchmarks.md.
#
# Usage: scripts/bench-metrics.sh [ROWS] [--reps R] [--metricframe-reps M] [--no-metricframe]
#   ROWS                 rows of the generated CSV (default 10000000, about 228 MB)
#   --reps R             runs of fairlab and of the direct-call Python, alternating (default 3)
#   --metricframe-reps M runs of the fairlearn MetricFrame version (default 1: it takes minutes)
#   --no-metricframe     same as --metricframe-reps 0
#
# Installs the pinned Python packages (scripts/bench/requirements.txt) into .venv-bench once,
# builds fairlab in release mode, writes the CSV once per row count, then times every run with
# /usr/bin/time (wall seconds, peak RSS), checks that all outputs agree key by key (1e-9 relative,
# nulls identical) and prints a markdown table; the table, the agreement check and the machine are
# also saved to target/bench/metrics-<date>-<rows>.md, the raw outputs beside it. Exits 1 if the
# outputs disagree.
#
# Environment: FAIRLAB_BENCH_VENV (default .venv-bench), CARGO_TARGET_DIR (default
# ~/.cache/fairlab/target, as .ci/run), FAIRLAB_BENCH_DATA (where the CSVs are kept, default
# ~/.cache/fairlab/bench), FAIRLAB_BIN (a fairlab binary to time instead of building one).
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=10000000
REPS=3
MF_REPS=1
COMMAND="scripts/bench-metrics.sh${*:+ $*}"
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) REPS=${2:-}; shift $(( $# > 1 ? 2 : 1 )) ;;
    --metricframe-reps) MF_REPS=${2:-}; shift $(( $# > 1 ? 2 : 1 )) ;;
    --no-metricframe) MF_REPS=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "bench-metrics.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) ROWS=$1; shift ;;
  esac
done
for n in "$ROWS" "$REPS" "$MF_REPS"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "bench-metrics.sh: not a count: $n" >&2; exit 2; }
done
if [ "$ROWS" -lt 1 ] || [ "$REPS" -lt 1 ]; then
  echo "bench-metrics.sh: ROWS and --reps must be at least 1" >&2
  exit 2
fi

# -- the Python reference's venv, pinned -------------------------------------------------------------
VENV=${FAIRLAB_BENCH_VENV:-.venv-bench}
REQ=scripts/bench/requirements.txt
STAMP="$VENV/.fairlab-bench-requirements"
if ! cmp -s "$REQ" "$STAMP" 2>/dev/null || ! "$VENV/bin/python" -c "import fairlearn" 2>/dev/null; then
  echo "== installing the Python reference's packages into $VENV (once; about a minute)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQ"
  cp "$REQ" "$STAMP"
fi
PY="$PWD/$VENV/bin/python"

# -- fairlab, release build ----------------------------------------------------------------------------
if [ -n "${FAIRLAB_BIN:-}" ]; then
  FAIRLAB=$FAIRLAB_BIN
else
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fairlab/target}"
  echo "== cargo build --release --bin fairlab (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  cargo build --release --bin fairlab
  FAIRLAB="$CARGO_TARGET_DIR/release/fairlab"
fi

# -- the data, generated once per row count ----------------------------------------------------------
DATA=${FAIRLAB_BENCH_DATA:-$HOME/.cache/fairlab/bench}
mkdir -p "$DATA"
# The generator's hash is in the name: a changed generator writes a new file.
GEN_HASH=$(sha256sum scripts/bench/gen_predictions.py | cut -c1-8)
CSV="$DATA/predictions-$ROWS-$GEN_HASH.csv"
if [ ! -f "$CSV" ]; then
  echo "== writing $CSV ($ROWS rows; about 2 s per million)"
  "$PY" scripts/bench/gen_predictions.py "$ROWS" "$CSV"
fi
echo "== data: $CSV ($(awk -v b="$(stat -c %s "$CSV")" 'BEGIN { printf "%.1f", b / 1e6 }') MB)"

# -- the reference itself agrees with the contract's golden cases --------------------------------------
echo "== checking the Python reference against tests/fixtures/metrics (both modes)"
"$PY" scripts/bench/metrics_reference.py --check-fixtures tests/fixtures/metrics > "$DATA/.fixtures-check.txt" \
  || { cat "$DATA/.fixtures-check.txt"; echo "error: the Python reference disagrees with the golden cases" >&2; exit 1; }
echo "   $(grep -c ' agrees ' "$DATA/.fixtures-check.txt") of $(grep -c -- '--mode' "$DATA/.fixtures-check.txt") (case, mode) pairs agree"

# -- timed runs, alternating ----------------------------------------------------------------------------
STAMP_NOW=$(date +%Y%m%d-%H%M%S)
RUN_DIR="target/bench/metrics-$STAMP_NOW-$ROWS"
mkdir -p "$RUN_DIR"
if [ -x /usr/bin/time ]; then
  timed() { /usr/bin/time -f "%e %M" -o "$1" "${@:2}"; }
else
  echo "== /usr/bin/time not found (apt-get install time): timing with scripts/bench/timed.py"
  timed() { python3 scripts/bench/timed.py "$@"; }
fi
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# Every tool reads the file from the page cache, none from disk.
cat "$CSV" > /dev/null

run() { # run TOOL REP: time one run, its JSON to RUN_DIR/TOOL-REP.json, its time to times.tsv
  local tool=$1 rep=$2 out="$RUN_DIR/$1-$2.json" t="$RUN_DIR/.time"
  case "$tool" in
    fairlab) timed "$t" "$FAIRLAB" metrics "$CSV" --format json > "$out" ;;
    direct) timed "$t" "$PY" scripts/bench/metrics_reference.py "$CSV" --mode direct --out "$out" ;;
    metricframe) timed "$t" "$PY" scripts/bench/metrics_reference.py "$CSV" --mode metricframe --out "$out" ;;
  esac || { echo "error: $tool (run $rep) failed; see above" >&2; exit 1; }
  read -r wall rss < "$t"
  printf '%s\t%s\t%s\t%s\n' "$tool" "$rep" "$wall" "$rss" >> "$RUN_DIR/times.tsv"
  printf '   %-12s run %d: %8.2f s %8.0f MiB\n' "$tool" "$rep" "$wall" "$((rss / 1024))"
}
echo "== timing: $REPS x fairlab, $REPS x Python direct, $MF_REPS x Python MetricFrame (alternating)"
for rep in $(seq 1 "$REPS"); do
  run fairlab "$rep"
  run direct "$rep"
  if [ "$rep" -le "$MF_REPS" ]; then run metricframe "$rep"; fi
done
for rep in $(seq $((REPS + 1)) "$MF_REPS"); do run metricframe "$rep"; done

# -- agreement and the report ------------------------------------------------------------------------
echo "== agreement"
others=()
for rep in $(seq 2 "$REPS"); do others+=("$RUN_DIR/fairlab-$rep.json"); done
for rep in $(seq 1 "$REPS"); do others+=("$RUN_DIR/direct-$rep.json"); done
for rep in $(seq 1 "$MF_REPS"); do others+=("$RUN_DIR/metricframe-$rep.json"); done
agree=0
"$PY" scripts/bench/compare_reports.py "$RUN_DIR/fairlab-1.json" "${others[@]}" > "$RUN_DIR/agreement.txt" || agree=$?
sed "s|$RUN_DIR/||g" "$RUN_DIR/agreement.txt" > "$RUN_DIR/agreement-short.txt"
cat "$RUN_DIR/agreement-short.txt"

REPORT="target/bench/metrics-$STAMP_NOW-$ROWS.md"
"$PY" scripts/bench/report.py "$RUN_DIR" --csv "$CSV" --rows "$ROWS" --command "$COMMAND" \
  --fairlab "${FAIRLAB_BIN:-release build}" --python "$PY" --load-start "$LOAD_START" --agreement "$RUN_DIR/agreement-short.txt" > "$REPORT"
echo
cat "$REPORT"
echo
echo "== saved to $REPORT (raw outputs and times in $RUN_DIR/)"
if [ "$agree" -ne 0 ]; then
  echo "error: the outputs disagree (see above)" >&2
  exit 1
fi
