// The table of one CPU level's kernels. Compiled once per level like the kernels themselves,
// so every name below is that level's (cpu/cpu_level.h renames them). The table is a constant
// (no code runs to fill it at load time): code of this file's level must never run before
// the import has checked that the CPU has that level.
#include "cpu/cpu_kernels.h"

#define NEARZERO_LEVEL_STRING2(x) #x
#define NEARZERO_LEVEL_STRING(x) NEARZERO_LEVEL_STRING2(x)

namespace nearzero {
namespace {

template <typename T> constexpr CpuKernelsOf<T> kernels_of() {
  return {&matmul_classify_cpu<T>,
          &conv_classify_cpu<T>,
          &conv_backprop_filter_classify_cpu<T>,
          &conv_backprop_input_classify_cpu<T>,
          &tensor_classify_cpu<T>,
          &multiply_classify_cpu<T>};
}

}  // namespace

extern const CpuKernels level_kernels;
const CpuKernels level_kernels = {NEARZERO_LEVEL_STRING(NEARZERO_CPU_LEVEL), kernels_of<float>(),
                                  kernels_of<double>()};

}  // namespace nearzero
