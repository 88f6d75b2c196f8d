#!/usr/bin/env bash
# One-call check of nearzero on a GPU machine without network access (Python, torch with CUDA,
# CuPy, nvcc, CMake, ninja, pybind11, scikit-build-core and pytest preinstalled):
#   1. build and install the package with its CUDA module, in place;
#   2. run the GPU tests (torch and CuPy on the real device);
#   3. run the whole test suite;
#   4. nearzero bench --device cuda (JSON to $OUT/bench.json when $OUT is set);
#   5. compute-sanitizer memcheck and racecheck on a short GPU test subset;
# then print a table of the steps. Each step gets a time limit and all of them share a budget
# (GPU_CHECK_BUDGET seconds, default 570), so one stuck step cannot eat the others' time.
# Exit status: 0 when every step that ran passed.
set -uo pipefail
cd "$(dirname "$0")/.."

BUDGET=${GPU_CHECK_BUDGET:-570}
START=$(date +%s)
LOGS=${OUT:-/tmp}/gpu_check_logs
mkdir -p "$LOGS"
PY=${PYTHON:-python3}
declare -a NAMES RESULTS TIMES

remaining() { echo $((BUDGET - ($(date +%s) - START))); }

# step NAME LIMIT COMMAND...: runs COMMAND with min(LIMIT, remaining budget) seconds.
step() {
  local name=$1 limit=$2
  shift 2
  local left
  left=$(remaining)
  if ((left < 20)); then
    NAMES+=("$name"); RESULTS+=("skipped (budget spent)"); TIMES+=("-")
    return
  fi
  ((limit > left)) && limit=$left
  local log="$LOGS/${name// /_}.log" t0=$(date +%s)
  echo "=== $name (limit ${limit}s, log $log)"
  timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
  local rc=$?
  local took=$(($(date +%s) - t0))
  tail -n 15 "$log"
  local summary
  summary=$(grep -E "^(=+ )?[0-9]+ (passed|failed)|ERROR SUMMARY|RACECHECK SUMMARY" "$log" \
            | tail -n 2 | tr '\n' ' ' | sed 's/=//g')
  if ((rc == 0)); then
    RESULTS+=("ok ${summary}")
  elif ((rc == 124 || rc == 137)); then
    RESULTS+=("TIMED OUT after ${limit}s ${summary}")
  else
    RESULTS+=("FAILED (exit $rc) ${summary}")
  fi
  NAMES+=("$name"); TIMES+=("${took}s")
}

# pytest options that work whether or not pytest-benchmark (named in pyproject's addopts) is
# installed here.
PYTEST=("$PY" -m pytest -q -p no:cacheprovider)
if ! "$PY" -c "import pytest_benchmark" 2>/dev/null; then
  PYTEST+=(-o "addopts=-ra --strict-markers")
fi
IGNORE=()
if ! "$PY" -c "import hypothesis" 2>/dev/null; then  # property tests need it
  for f in $(grep -l "^from hypothesis\|^import hypothesis" tests/*.py); do IGNORE+=(--ignore "$f"); done
fi

ARCH=""
if command -v nvidia-smi >/dev/null 2>&1; then
  ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d '. ')
fi
export NEARZERO_CUDA=ON
[[ -n "$ARCH" ]] && export CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=${ARCH}-real ${CMAKE_ARGS:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null

step "build" 300 "$PY" -m pip install --no-build-isolation --no-deps . -v
step "import" 60 "$PY" -c "import json, nearzero; i = nearzero.build_info(); print(json.dumps(i)); assert i['cuda_built'] and i['cuda_devices'] > 0, 'no CUDA module or no device'"
# The CPU emulation of the kernels is for machines without a GPU; here the real device runs them.
step "gpu tests" 240 "${PYTEST[@]}" "${IGNORE[@]}" -m gpu -k "not emulated" tests
step "whole suite" 300 "${PYTEST[@]}" "${IGNORE[@]}" -k "not emulated" tests
if [[ -n "${OUT:-}" ]]; then
  step "bench" 240 "$PY" -m nearzero.cli bench --device cuda --json "$OUT/bench.json"
else
  step "bench" 240 "$PY" -m nearzero.cli bench --device cuda
fi
SUBSET=(tests/test_gpu_ops.py::test_matmul_layouts tests/test_gpu_conv.py::test_reduce_and_mask
        tests/test_gpu_reduce.py::test_elementwise_reduce_and_mask
        tests/test_gpu_threshold.py::test_threshold_ties_and_extremes)
SANITIZER=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -n 1)
if [[ -x "$SANITIZER" ]]; then
  # No caching allocator: out-of-bounds accesses must hit memory the sanitizer sees as unallocated.
  step "memcheck" 200 env PYTORCH_NO_CUDA_MEMORY_CACHING=1 "$SANITIZER" --tool memcheck \
    --error-exitcode 9 "${PYTEST[@]}" -k "torch-cuda" "${SUBSET[@]}"
  step "racecheck" 200 "$SANITIZER" --tool racecheck --error-exitcode 9 "${PYTEST[@]}" \
    -k "torch-cuda" tests/test_gpu_ops.py::test_matmul_layouts tests/test_gpu_conv.py::test_reduce_and_mask
else
  NAMES+=("sanitizers"); RESULTS+=("skipped (compute-sanitizer not found)"); TIMES+=("-")
fi

echo
printf '%-12s %-8s %s\n' "step" "time" "result"
printf '%-12s %-8s %s\n' "----" "----" "------"
status=0
for i in "${!NAMES[@]}"; do
  printf '%-12s %-8s %s\n' "${NAMES[$i]}" "${TIMES[$i]}" "${RESULTS[$i]}"
  [[ "${RESULTS[$i]}" == ok* ]] || status=1
done
exit $status
