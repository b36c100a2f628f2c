#!/usr/bin/env bash
# Run every method experiment over several seeds into one store, then print the results table of
# docs/results.md (mean +- std over seeds, test split).
#
#   scripts/results.sh [METHOD...]          # default: every method below, seeds 0-4
#   SEEDS="0 1" scripts/results.sh erm dne-adam
#
# Runs go to target/results/mlruns (MLFLOW_TRACKING_URI overrides); a (method, seed) already
# FINISHED there is not run again, so the script resumes after an interruption.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fairlab/target}"
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-target/results/mlruns}"
SEEDS="${SEEDS:-0 1 2 3 4}"
METHODS=("$@")
if [ ${#METHODS[@]} -eq 0 ]; then
  METHODS=(erm resampling group-dro fairclip-probe dne-adam dne-gezo-as-coded dne-gezo-paper)
fi
cargo build --release --quiet --bin fairlab
bin="$CARGO_TARGET_DIR/release/fairlab"
for method in "${METHODS[@]}"; do
  for seed in $SEEDS; do
    if python3 scripts/results_table.py --done "$method" "$seed"; then
      echo "== $method seed $seed: done already"
      continue
    fi
    echo "== $method seed $seed"
    "$bin" run "experiments/$method.yaml" --set "seed=$seed" --set "tracking.run_name=$method-seed$seed" >/dev/null
  done
done
python3 scripts/results_table.py "${METHODS[@]}"
