#!/usr/bin/env bash
# Verify the GPU kernels on a CUDA machine: runs the gpu-marked tests, the rest of the suite and
# the GPU benchmarks, and writes logs and JSON under OUTDIR.
#
# Works without installing fastops and without network: the repository goes on PYTHONPATH and
# only what the machine has is used (CuPy, Numba, NumPy, pytest, hypothesis; rich, matplotlib,
# scipy and torch when present).
#
#   bash scripts/gpu_check.sh OUTDIR
set -u
out=${1:?usage: scripts/gpu_check.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo" || exit 2
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
export NUMBA_CACHE_DIR="$out/numba-cache"
py=${PYTHON:-python3}
status=0

run() {  # run NAME CMD...: log to $out/NAME.log, remember failures
  local name=$1
  shift
  echo "== $name: $*" | tee -a "$out/summary.txt"
  "$@" >"$out/$name.log" 2>&1
  local rc=$?
  tail -n 3 "$out/$name.log" | sed 's/^/   /' | tee -a "$out/summary.txt"
  echo "   exit $rc" | tee -a "$out/summary.txt"
  [ "$rc" -eq 0 ] || status=1
}

run info "$py" -m fastops.cli info
run nvidia-smi nvidia-smi
run pytest-gpu "$py" -m pytest -q -p no:cacheprovider -m gpu -rs tests
# Every GPU shape of the issue, against the GPU peers (the NumPy reference on host copies of
# 2^28 elements would dominate the run); then the README's main job, CPU and GPU side by side.
run bench-gpu "$py" -m fastops.cli bench --backend cupy --peers torch,torch_autograd,cupyx,cupy,numba \
  --json "$out/bench-gpu.json"
run bench-quick "$py" -m fastops.cli bench --quick --backend all --json "$out/bench-quick.json"
if [ "${FASTOPS_GPU_CHECK_ALL:-0}" = 1 ]; then  # the whole suite too (CPU tests run in CI)
  run pytest-all "$py" -m pytest -q -p no:cacheprovider tests
fi
echo "logs in $out; overall exit $status" | tee -a "$out/summary.txt"
exit "$status"
