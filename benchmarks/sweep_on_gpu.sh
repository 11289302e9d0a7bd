#!/usr/bin/env bash
# Issue 21's recipe sweep on a lent GPU machine, in one call: the averaging tests on CUDA, then the
# arms of recipe_ablation.py that leave a CPU epoch's cost unchanged, each trained for the epochs
# the CPU budget reaches (14: 20 minutes on 2 threads), and with LONG=1 the longer budget (24
# epochs: 60 minutes on 1 thread) with more dropout. Choices are read off the validation column;
# a CPU run of the chosen arm in its real 20-minute budget then confirms it.
#
#   bash benchmarks/sweep_on_gpu.sh [SHARED_DIR] [OUT_DIR]
#
# Each arm's row lands in OUT_DIR/rows<EPOCHS>.jsonl as it ends, its per-epoch history in
# history<EPOCHS>.json, so a sweep cut by its time limit keeps what it finished.
set -uo pipefail
shared=${1:-../shared}
out=${2:-benchmarks/results/sweep}
work=${WORK:-/tmp/attnrun-sweep}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
ONLY=test_cuda bash benchmarks/cuda_checks.sh "$shared" "$out"  # gpu.txt and the CUDA tests

sweep() {  # sweep LIMIT_S EPOCHS JOBS ARM...: the arms, JOBS at once, stopped after LIMIT_S
  local limit=$1 epochs=$2 jobs=$3
  shift 3
  timeout "$limit" python3 benchmarks/recipe_ablation.py --epochs "$epochs" --jobs "$jobs" \
    --threads 1 --shared "$shared" --out "$work/e$epochs" --splits val test_2016_flickr \
    --arms "$@" >"$out/sweep$epochs.log" 2>&1  # workers end with it (average_seeds.pool)
  grep -v Warning "$out/sweep$epochs.log"
  cp "$work/e$epochs/rows.jsonl" "$out/rows$epochs.jsonl"
  python3 -c 'import json, pathlib, sys
runs = {p.parent.name: json.loads(p.read_text()) for p in pathlib.Path(sys.argv[1]).glob("*/history.json")}
print(json.dumps(runs))' "$work/e$epochs" >"$out/history$epochs.json"
}
# one process and thread per arm, the arms side by side on the GPU: 7 arms of 14 epochs took
# 350 s with beam scoring (2026-12-04, an H200). LONG=1 adds the 60-minute budget's 24 epochs
# with more dropout, beside them: give it LIMIT=600 (it did not finish in 450 s beside the 7)
sweep "${LIMIT:-450}" 14 7 recipe dropout0.2 dropout0.3 lr0.002 warmup300 last8 prenorm &
if [[ -n ${LONG:-} ]]; then sweep "${LIMIT:-450}" 24 3 recipe dropout0.2 dropout0.3 & fi
wait
