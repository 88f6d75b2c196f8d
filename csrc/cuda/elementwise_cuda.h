// Elementwise classify kernels on CUDA device pointers and the caller's stream.
// Defined in elementwise_cuda.cu; bound in bindings/cuda_module.cpp.
#pragma once
#include <cstdint>

namespace nearzero {

// x: n contiguous values; counts: n*3 int32, sums: n*3 float/double ([cell][class]).
template <typename T>
void tensor_classify_cuda(const T *x, int64_t n, T threshold, int32_t *counts, T *sums,
                          void *stream);

int cuda_device_count();

}  // namespace nearzero
