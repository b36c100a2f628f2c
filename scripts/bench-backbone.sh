#!/usr/bin/env bash
# Side-by-side GPU benchmark of CLIP ViT-B/16's vision tower (random weights, the real architecture):
# `fairlab bench backbone` (candle) and scripts/bench/backbone_torch.py (PyTorch eager, transformers'
# CLIP when installed, else a plain PyTorch ViT), alternating in one run on the same device.
# Measures image-feature throughput at batch 256 and the time of one DNE step (forward + backward
# into an input-noise plane through the frozen tower, batch 128), in f32 and bf16. See
# docs/benchmarks.md.
#
# Usage: scripts/bench-backbone.sh [--reps R] [ARGS...]
#   --reps R   alternating runs of each side (default 2); the table shows every run and the ratios
#              of the medians
#   ARGS       passed to both sides: --arch vit-b16|tiny, --device cuda|cpu, --dtypes f32,bf16,
#              --batch N, --dne-batch N, --warmup N, --iters N, --tf32
#
# Environment: FAIRLAB_BIN (the fairlab binary; default: build target/release/fairlab, with
# --features cuda when nvcc is on the PATH), PYTHON (an interpreter with torch; default python3),
# BENCH_OUT (folder for the report, default target/bench).
# Check the script on a CPU in seconds: scripts/bench-backbone.sh --arch tiny --device cpu --batch 4 --dne-batch 2
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=2
ARGS=()
COMMAND="scripts/bench-backbone.sh${*:+ $*}"
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) REPS=${2:-}; shift $(( $# > 1 ? 2 : 1 )) ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || { echo "bench-backbone.sh: --reps must be a positive count" >&2; exit 2; }

PYTHON=${PYTHON:-python3}
"$PYTHON" -c "import torch" 2>/dev/null || { echo "bench-backbone.sh: $PYTHON has no torch (set PYTHON)" >&2; exit 2; }
if [ -n "${FAIRLAB_BIN:-}" ]; then
  FAIRLAB=$FAIRLAB_BIN
else
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/fairlab/target}
  FEATURES=()
  command -v nvcc >/dev/null && FEATURES=(--features cuda)
  cargo build --release --quiet "${FEATURES[@]}"
  FAIRLAB=$CARGO_TARGET_DIR/release/fairlab
fi

OUT_DIR=${BENCH_OUT:-target/bench}
mkdir -p "$OUT_DIR"
RAW="$OUT_DIR/backbone-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
for rep in $(seq "$REPS"); do
  echo "== run $rep/$REPS: fairlab" >&2
  "$FAIRLAB" bench backbone "${ARGS[@]}" | tee -a "$RAW"
  echo "== run $rep/$REPS: PyTorch" >&2
  "$PYTHON" scripts/bench/backbone_torch.py "${ARGS[@]}" | tee -a "$RAW"
done

REPORT="${RAW%.jsonl}.md"
"$PYTHON" - "$RAW" "$COMMAND" > "$REPORT" <<'PY'
import json, statistics, sys, platform
raw, command = sys.argv[1], sys.argv[2]
rows = [json.loads(line) for line in open(raw) if line.strip()]
side = lambda r: "fairlab" if r["framework"].startswith("fairlab") else "torch"
print(f"Command: `{command}`  \nHost: {platform.node()}, device {rows[0]['device']}, arch {rows[0]['arch']}, "
      f"batch {rows[0]['batch']}, DNE batch {rows[0]['dne_batch']}, TF32 {rows[0]['tf32']}\n")
print("| framework | dtype | images/s | forward ms | DNE step ms |\n|---|---|---|---|---|")
for r in rows:
    print(f"| {r['framework']} | {r['dtype']} | {r['images_per_s']:.0f} | {r['forward_ms']:.2f} | {r['dne_step_ms']:.2f} |")
print("\n| dtype | throughput fairlab / PyTorch | DNE step PyTorch / fairlab (>1: fairlab faster) |\n|---|---|---|")
for dtype in dict.fromkeys(r["dtype"] for r in rows):
    med = lambda s, k: statistics.median(r[k] for r in rows if r["dtype"] == dtype and side(r) == s)
    print(f"| {dtype} | {med('fairlab', 'images_per_s') / med('torch', 'images_per_s'):.2f} | "
          f"{med('torch', 'dne_step_ms') / med('fairlab', 'dne_step_ms'):.2f} |")
PY
cat "$REPORT"
echo "report: $REPORT (raw: $RAW)" >&2
