// Fused elementwise classify kernels (tensor_classify, multiply_classify), CPU.
// Defined in elementwise_cpu.cpp, bound in bindings/cpu_module.cpp.
#pragma once
#include "cpu/classify_output.h"

#include <cstdint>
#include <vector>

namespace nearzero {

// Strided view of an n-d input; strides are in elements and may be 0 (broadcast).
template <typename T> struct StridedInput {
  const T *data;
  std::vector<int64_t> strides;
};

// Cells in row-major order over `shape`; writes 3 pairs (P, Z, N) per cell.
template <typename T>
void tensor_classify_cpu(const StridedInput<T> &x, const std::vector<int64_t> &shape,
                         T threshold, const ClassifyOutput &out);

// Cells in row-major order over the broadcast `shape`; writes 9 pairs per cell.
template <typename T>
void multiply_classify_cpu(const StridedInput<T> &x, const StridedInput<T> &y,
                           const std::vector<int64_t> &shape, T x_threshold, T y_threshold,
                           const ClassifyOutput &out);

}  // namespace nearzero
