#!/usr/bin/env bash
# One prepared run for a lent H100/H200 (a few minutes): step time and peak memory of every backend at
# the 45m preset, AdamW's MFU, harness overhead, and bf16-vs-fp32 agreement of the GN product.
# Usage: bash scripts/gpu_check.sh [extra args for benchmark.gpu_check]; writes $OUT/gpu_check.json if OUT is set.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 scripts/gpu_check.py --json "${OUT:-/tmp}/gpu_check.json" "$@"
# GPU tests: each backend on CUDA against the CPU, and the real harness on the GPU.
python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tail -15
