#!/usr/bin/env bash
# On a GPU machine: check that a CUDA build of fairlab gives the CPU's outputs. Embeds the tiny CLIP
# and BLIP fixtures (images, and texts for CLIP) on the CPU and on the GPU with the same binary, in
# f32, and compares every tensor (max |cpu - cuda| <= 1e-4), then runs the tiny backbone benchmark on
# the GPU as a smoke test. Needs python3 with numpy (no torch, no safetensors package).
#
# Usage: FAIRLAB_BIN=path/to/fairlab scripts/gpu-check.sh [DEVICE]    (DEVICE default cuda:0)
# A binary built with `--features cuda` is required; see docs/backbones.md.
set -euo pipefail
cd "$(dirname "$0")/.."
FAIRLAB=${FAIRLAB_BIN:-target/release/fairlab}
DEVICE=${1:-cuda:0}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FIX=tests/fixtures/hf/models
python3 -c "import json; print('\n'.join(json.load(open('$FIX/tiny-clip/reference/texts.json'))))" > "$WORK/texts.txt"

for model in tiny-clip tiny-blip; do
  kind=${model#tiny-}
  texts=()
  [ "$kind" = clip ] && texts=(--texts "$WORK/texts.txt")
  for side in cpu gpu; do
    device=cpu
    [ "$side" = gpu ] && device=$DEVICE
    "$FAIRLAB" embed --backbone "$kind" --model "$FIX/$model" --device "$device" --dtype f32 \
      --images "$FIX/$model/reference" "${texts[@]}" --out "$WORK/$model-$side.safetensors" >/dev/null
  done
done

python3 - "$WORK" <<'PY'
import json, struct, sys
import numpy as np

def load(path):
    """A safetensors file's f32 tensors (the format: u64 header size, JSON header, raw data)."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    return {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], dtype=np.float32).reshape(v["shape"])
            for k, v in header.items() if k != "__metadata__"}

work, worst = sys.argv[1], 0.0
for model in ("tiny-clip", "tiny-blip"):
    cpu, gpu = load(f"{work}/{model}-cpu.safetensors"), load(f"{work}/{model}-gpu.safetensors")
    for name in cpu:
        diff = float(np.abs(cpu[name] - gpu[name]).max())
        worst = max(worst, diff)
        print(f"{model} {name} {list(cpu[name].shape)}: max |cpu - gpu| = {diff:.2e}")
print("OK" if worst <= 1e-4 else "FAILED", f"(worst {worst:.2e}, tolerance 1e-4)")
sys.exit(0 if worst <= 1e-4 else 1)
PY

"$FAIRLAB" bench backbone --arch tiny --device "$DEVICE" --iters 3
