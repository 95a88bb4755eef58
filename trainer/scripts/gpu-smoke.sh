#!/usr/bin/env bash
# GPU smoke test of verdict-trainer on a CUDA machine (built elsewhere, copied over).
#
# Build (on a machine with Rust; no nvcc needed — kernels are compiled at run time by NVRTC):
#   CUDARC_CUDA_VERSION=13000 cargo build --release -p verdict-trainer --features cuda
#   strip -o verdict-trainer target/release/verdict-trainer   # ~35 MB
#   copy verdict-trainer to the GPU machine
#
# Run on the GPU machine (needs libcuda and libnvrtc from the CUDA 13 runtime):
#   trainer/scripts/gpu-smoke.sh [path/to/verdict-trainer] [steps]
#
# Prints: the GPU, then one JSON line per measurement with median_step_ms and tokens_per_s for
# the `small` preset (forward + backward + AdamW, MoE routing included), then a short real
# pretraining run of the small preset with its held-out loss before/after.
set -euo pipefail

BIN="${1:-./verdict-trainer}"
STEPS="${2:-20}"
OUT="${OUT:-$(mktemp -d)}"

if [[ ! -x "$BIN" ]]; then
  echo "no executable at $BIN (pass the cuda build of verdict-trainer)" >&2
  exit 2
fi

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$BIN" params small

echo "# throughput, small preset, batch 16 x 512 tokens"
"$BIN" bench --config small --device cuda --steps "$STEPS" | tee "$OUT/bench-small.json"

echo "# throughput, small preset, batch 32 x 512 tokens"
"$BIN" bench --config small --device cuda --steps "$STEPS" --batch-size 32 | tee "$OUT/bench-small-b32.json"

echo "# short pretraining run of the small preset"
"$BIN" pretrain --config small --run-dir "$OUT/run" --steps 100 --device cuda | tee "$OUT/pretrain.json"

echo "# results in $OUT"
