// Elementwise classify kernels for CUDA: one thread per cell, the shared rule header.
#include "common/classify_rule.h"
#include "cuda/cuda_check.h"
#include "cuda/elementwise_cuda.h"

namespace nearzero {
namespace {

template <typename T>
__global__ void tensor_classify_kernel(const T *x, int64_t n, T threshold, int32_t *counts,
                                       T *sums) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const T v = x[i];
    const int c = classify_value(v, threshold);
    for (int q = 0; q < 3; ++q) {
      counts[i * 3 + q] = (q == c);
      sums[i * 3 + q] = q == c ? v : T(0);
    }
  }
}

}  // namespace

template <typename T>
void tensor_classify_cuda(const T *x, int64_t n, T threshold, int32_t *counts, T *sums,
                          void *stream) {
  if (n == 0) return;
  const int threads = 256;
  const int64_t blocks = (n + threads - 1) / threads;
  const int grid = int(blocks < 65535 ? blocks : 65535);
  tensor_classify_kernel<T><<<grid, threads, 0, static_cast<cudaStream_t>(stream)>>>(
      x, n, threshold, counts, sums);
  cuda_check(cudaGetLastError(), "tensor_classify kernel launch");
}

template void tensor_classify_cuda<float>(const float *, int64_t, float, int32_t *, float *,
                                          void *);
template void tensor_classify_cuda<double>(const double *, int64_t, double, int32_t *,
                                           double *, void *);

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return count;
}

}  // namespace nearzero
