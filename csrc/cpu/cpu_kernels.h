// The classify kernels of one CPU level as a table of function pointers. Each level's objects
// define one table (cpu_kernels_level.cpp, compiled once per level); cpu_dispatch.cpp picks one
// at import and the kernel functions that the bindings call forward to it.
#pragma once
#include "cpu/conv_cpu.h"
#include "cpu/elementwise_cpu.h"
#include "cpu/matmul_cpu.h"

#include <string>
#include <vector>

namespace nearzero {

template <typename T> struct CpuKernelsOf {
  void (*matmul)(const MatmulProblem<T> &, const ClassifyOutput &);
  void (*conv_forward)(const ConvGeometry &, const T *, const T *, T, T, const ClassifyOutput &);
  void (*conv_filter_grad)(const ConvGeometry &, const T *, const T *, T, T,
                           const ClassifyOutput &);
  void (*conv_input_grad)(const ConvGeometry &, const T *, const T *, T, T,
                          const ClassifyOutput &);
  void (*tensor)(const StridedInput<T> &, const std::vector<int64_t> &, T, const ClassifyOutput &);
  void (*multiply)(const StridedInput<T> &, const StridedInput<T> &, const std::vector<int64_t> &,
                   T, T, const ClassifyOutput &);
};

struct CpuKernels {
  const char *level;  // "v2", "v3", "v4" (x86-64), "neon" (aarch64) or "generic"
  CpuKernelsOf<float> f32;
  CpuKernelsOf<double> f64;
};

// What the CPU-level choice looks like from Python (build_info()["cpu"]).
struct CpuLevels {
  std::vector<std::string> built;      // lowest first
  std::vector<std::string> supported;  // of those built, the ones this CPU runs
  std::string selected;
};

// Chooses the level at import: the best one this CPU supports, or `request` (the value of
// NEARZERO_CPU_ISA; null or empty for the best). Throws std::runtime_error naming the problem
// when the request is unknown or needs an instruction set the CPU lacks.
void select_cpu_level(const char *request);
CpuLevels cpu_levels();

}  // namespace nearzero
