// Fused elementwise classify kernels on CUDA (tensor_classify, multiply_classify with NumPy
// broadcasting) on device pointers and the caller's stream. Defined in elementwise_cuda.cu,
// bound in bindings/cuda_elementwise.cpp.
#pragma once
#include "common/result_descriptor.h"

#include <cstdint>

namespace nearzero {

// Cells in row-major order over `shape`; element strides per input (0 = broadcast). Callers
// merge mergeable dimensions first; at most kMaxDims remain.
struct ElementwiseGeometry {
  static constexpr int kMaxDims = 10;
  int rank = 0;
  int64_t shape[kMaxDims] = {};
  int64_t x_strides[kMaxDims] = {};
  int64_t y_strides[kMaxDims] = {};
};

// 3 pairs (P, Z, N) per cell.
template <typename T>
void tensor_classify_cuda(const T *x, const ElementwiseGeometry &geometry, T threshold,
                          const ClassifyOutput &out, void *stream);

// 9 pairs per cell.
template <typename T>
void multiply_classify_cuda(const T *x, const T *y, const ElementwiseGeometry &geometry,
                            T x_threshold, T y_threshold, const ClassifyOutput &out, void *stream);

}  // namespace nearzero
