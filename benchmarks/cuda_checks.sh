#!/usr/bin/env bash
# The CUDA checks in one go, for a machine with an NVIDIA GPU: the CUDA tests, then the core and
# Transformer benchmarks on CUDA (fp32 and bf16), each log written to OUT_DIR.
#
#   bash benchmarks/cuda_checks.sh [SHARED_DIR] [OUT_DIR]
#
# SHARED_DIR holds data/multi30k and peers (default ../shared); OUT_DIR defaults to
# benchmarks/results/cuda. Every step has its own time limit and a failing step does not stop the
# next, so one run gives every figure it can. The README's CUDA rows come from these logs.
# ONLY="core_bf16 transformer_bf16" (log names without .log) runs just those steps.
set -uo pipefail
shared=${1:-../shared}
out=${2:-benchmarks/results/cuda}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

step() {  # step LIMIT_S LOG COMMAND...: run COMMAND under LIMIT_S seconds, tee its output to LOG
  local limit=$1 log=$2
  shift 2
  if [[ -n ${ONLY:-} && " $ONLY " != *" ${log%.log} "* ]]; then return; fi
  echo "== $* (limit ${limit}s)" | tee "$out/$log"
  local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee -a "$out/$log"
  echo "== exit ${PIPESTATUS[0]} after $((SECONDS - t0))s" | tee -a "$out/$log"
}

{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
  nproc
} 2>&1 | tee "$out/gpu.txt"
step 150 test_cuda.log python3 -m pytest -q -p no:cacheprovider tests/core/test_cuda.py \
  tests/translate/test_cuda_run.py tests/test_averaging.py
step 90 core_fp32.log python3 benchmarks/bench_core.py --device cuda --quick --shared "$shared" \
  --out "$out/core_cuda.json"
step 75 core_bf16.log python3 benchmarks/bench_core.py --device cuda --quick --dtype bfloat16 \
  --shared "$shared" --out "$out/core_cuda_bf16.json"
step 90 transformer_fp32.log python3 benchmarks/bench_transformer.py --device cuda \
  --shared "$shared" --rounds 5 --batches 10
step 75 transformer_bf16.log python3 benchmarks/bench_transformer.py --device cuda \
  --dtype bfloat16 --shared "$shared" --rounds 5 --batches 10 --skip-decode
