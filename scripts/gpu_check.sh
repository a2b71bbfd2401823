#!/usr/bin/env bash
# One prepared run for a lent H100/H200 (a few minutes): step time and peak memory of every backend at
# the 45m preset, AdamW's MFU, harness overhead, and bf16-vs-fp32 agreement of the GN product; then the peak
# memory of a real AdamW, GN and layerwise GN step at 45m and 150m (micro-batch 4 and 8 of 1024 tokens, fitted
# and extrapolated to 32, beside the dry run's memory model), whole, with the inner gradient in sub-batches, and
# with the forward-AD product.
# Usage: bash scripts/gpu_check.sh [extra args for benchmark.gpu_check]; writes $OUT/gpu_check.json if OUT is set.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 scripts/gpu_check.py --json "${OUT:-/tmp}/gpu_check.json" "$@"
for preset in 45m 150m; do
  python3 scripts/step_memory.py --device cuda --preset "$preset" --sequences 4,8 \
      --json "${OUT:-/tmp}/memory_${preset}.json" || true
  python3 scripts/step_memory.py --device cuda --preset "$preset" --sequences 4,8 --optimizers gn,layerwise-gn \
      --set sub_batch=4 --json "${OUT:-/tmp}/memory_${preset}_sub4.json" || true
  python3 scripts/step_memory.py --device cuda --preset "$preset" --sequences 4,8 --optimizers gn,layerwise-gn \
      --set product=forward_ad --json "${OUT:-/tmp}/memory_${preset}_forward_ad.json" || true
done
# GPU tests: each backend on CUDA against the CPU, and the real harness on the GPU.
python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tail -15
