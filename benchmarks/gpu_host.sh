#!/usr/bin/env bash
# The GPU paths of parity and benchmark jobs, on a GPU host: the GPU tests through the real job sandbox, then the
# benchmark scripts with --device cuda. Needs only the host's python3 with a CUDA build of torch, numpy, psutil,
# onnx, onnxruntime and pytest (no Django, no .venv, no services).
#   bash benchmarks/gpu_host.sh [OUT_DIR]     # log and result JSON under OUT_DIR (default var/bench-gpu)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-var/bench-gpu}
WORK=$(mktemp -d /tmp/forge-gpu.XXXXXX)   # models and ONNX files the scripts build stay out of OUT_DIR
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD PYTHONDONTWRITEBYTECODE=1
unset DJANGO_SETTINGS_MODULE
mkdir -p "$OUT"
LOG="$OUT/gpu.log"
step() { echo; echo "== $* ($(date -u +%H:%M:%S))"; }
{
  step machine
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
  $PY -c "import torch, onnxruntime, numpy, psutil; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'NO GPU'); \
print('onnxruntime', onnxruntime.__version__, onnxruntime.get_available_providers()); print('numpy', numpy.__version__)"
  step "tests (GPU tests and the pure-module tests under this host's torch)"
  timeout 200 $PY -m pytest -c /dev/null --rootdir=. --noconftest -p no:cacheprovider -q -rs --durations=8 \
    tests/models_registry/test_gpu.py tests/models_registry/test_runners.py \
    tests/models_registry/test_parity.py tests/models_registry/test_benchmark.py
  step "jobs through the sandbox"
  timeout 150 $PY benchmarks/gpu_jobs.py --device cuda --var-dir "$WORK"
  step "measurement accuracy"
  timeout 120 $PY benchmarks/benchmark_accuracy.py --device cuda --rounds 3 --var-dir "$WORK"
  step "parity cost"
  timeout 60 $PY benchmarks/parity_cost.py --device cuda --repeats 5 --batch-sizes 256,1024 --var-dir "$WORK"
  step done
} 2>&1 | tee "$LOG"
cp "$WORK"/results/*.json "$OUT"/ 2>/dev/null || true
