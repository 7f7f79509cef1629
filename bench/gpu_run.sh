#!/usr/bin/env bash
# One prepared run on a lent GPU machine (see docs/benchmarks.md). Wheels travel in .whl/.
# STAGES picks what runs, most important first (default: all; "graphs" alone takes up to 7 minutes):
#   graphs   the captured-block tests on CUDA, then bench/md_latency.py (issue 18's numbers)
#   check    bench/gpu_check.py and bench/gpu_md_check.py (correctness, drift, graphs vs eager)
#   bench    bench/md_throughput.py and bench/energy_forces.py (peers side by side), bench/fssh.py
#   physics  the model checks (V1-V3, mask, Hessian) and a short training run on CUDA, float64
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 TORCHANI_NO_WARN_EXTENSIONS=1
OUT=${OUT:-/tmp/out}
STAGES=${STAGES:-graphs check bench physics}
BENCH_ARGS=${BENCH_ARGS:-}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, vesin_torch; print('torch', torch.__version__, torch.cuda.is_available())"
for stage in $STAGES; do
  case $stage in
    graphs)
      MULTISCALE_TEST_DEVICE=cuda timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_md_graphs.py \
          2>&1 | tail -n 15 | tee "$OUT/pytest_graphs_cuda.txt"
      timeout 300 python3 bench/md_latency.py --device cuda --sizes 20 108 1372 10976 108000 1048576 \
          --replicas 1000 --seconds 1.5 --json "$OUT/md_latency_cuda.json" 2>&1 | tee "$OUT/md_latency_cuda.md" ;;
    check)
      timeout 60 python3 bench/gpu_check.py --out "$OUT/gpu_check.json"
      timeout 200 python3 bench/gpu_md_check.py --out "$OUT/gpu_md_check.json" ;;
    bench)
      timeout 240 python3 bench/md_throughput.py --device cuda --sizes 108 1372 10976 108000 1048576 \
          --json "$OUT/md_cuda.json" 2>&1 | tee "$OUT/md_cuda.md"
      timeout 300 python3 bench/energy_forces.py --device cuda --dtype float32 \
          --sizes 256 2048 16384 131072 1048576 --peak-tflops 51 --bandwidth-tbs 3.0 $BENCH_ARGS \
          --json "$OUT/bench_cuda.json" 2>&1 | tee "$OUT/bench_cuda.md"
      timeout 120 python3 bench/fssh.py --device cuda --trajectories 1 100 10000 2>&1 | tee "$OUT/fssh_cuda.md" ;;
    physics)
      MULTISCALE_TEST_DEVICE=cuda timeout 200 python3 -m pytest -q -p no:cacheprovider \
          tests/test_model_checks.py "tests/test_training.py::test_loss_falls" 2>&1 | tail -n 15 \
          | tee "$OUT/pytest_cuda.txt" ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done
