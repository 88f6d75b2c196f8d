#!/usr/bin/env bash
# Cross-compiles the CPU kernels for aarch64 as the build does there (one level, "neon", no
# instruction-set flags; CMakeLists.txt) and runs a matmul smoke test under qemu-aarch64.
# Needs g++-aarch64-linux-gnu and qemu-user (Debian/Ubuntu packages). Python is not involved,
# so this checks the kernels, the level renaming and the dispatch, not the bindings.
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=${CXX_AARCH64:-aarch64-linux-gnu-g++}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '#pragma once\n#define NEARZERO_FOR_EACH_CPU_LEVEL(X) X(neon)\n' > "$work/cpu_levels_built.h"
flags=(-std=c++17 -O2 -fopenmp -DNEARZERO_HAVE_OPENMP=1 -Icsrc "-I$work")
for f in matmul_cpu conv_forward_cpu conv_filter_grad_cpu conv_input_grad_cpu elementwise_cpu \
         cpu_kernels_level; do
  "$CXX" "${flags[@]}" -DNEARZERO_CPU_LEVEL=neon -include csrc/cpu/cpu_level.h \
    -c "csrc/cpu/$f.cpp" -o "$work/$f.o"
done
"$CXX" "${flags[@]}" -c csrc/cpu/cpu_dispatch.cpp -o "$work/cpu_dispatch.o"
"$CXX" "${flags[@]}" scripts/aarch64/matmul_smoke.cpp "$work"/*.o -o "$work/smoke"
qemu-aarch64 -L "${AARCH64_SYSROOT:-/usr/aarch64-linux-gnu}" "$work/smoke"
