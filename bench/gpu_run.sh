#!/usr/bin/env bash
# One prepared run on a lent GPU machine (see docs/benchmarks.md). Wheels travel in .whl/.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 TORCHANI_NO_WARN_EXTENSIONS=1
OUT=${OUT:-/tmp/out}
BENCH_ARGS=${BENCH_ARGS:-}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, vesin_torch; print('torch', torch.__version__, torch.cuda.is_available())"
timeout 120 python3 bench/gpu_check.py --out "$OUT/gpu_check.json"
timeout 420 python3 bench/energy_forces.py --device cuda --dtype float32 \
    --sizes 256 2048 16384 131072 1048576 --peak-tflops 51 --bandwidth-tbs 3.0 $BENCH_ARGS \
    --json "$OUT/bench_cuda.json" 2>&1 | tee "$OUT/bench_cuda.md"
