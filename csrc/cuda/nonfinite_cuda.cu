// One read pass counting NaN and +-inf (see nonfinite_cuda.h).
#include "cuda/cuda_check.h"
#include "cuda/device_info_cuda.h"
#include "cuda/flat_scan_cuda.cuh"
#include "cuda/nonfinite_cuda.h"

#include <algorithm>

namespace nearzero {
namespace flat_scan {

int scan_blocks(int64_t n, int elements_per_thread) {
  const int64_t needed = (n + int64_t(kThreads) * elements_per_thread - 1) /
                         (int64_t(kThreads) * elements_per_thread);
  const int64_t resident = int64_t(multiprocessor_count()) * (2048 / kThreads);
  return int(std::max<int64_t>(1, std::min(needed, resident)));
}

}  // namespace flat_scan

namespace {
using namespace flat_scan;

template <typename T>
__global__ void __launch_bounds__(kThreads)
    count_nonfinite_kernel(const T *x, int64_t n, bool aligned, unsigned long long *counts) {
  unsigned long long nans = 0, infinities = 0;
  visit_elements(x, n, aligned, [&](T v, bool valid) {
    const auto key = abs_key(v);
    nans += valid && radix::is_nan_key(key);
    infinities += valid && key == KeyTraits<T>::kInfinity;
  });
  nans = warp_sum(nans);
  infinities = warp_sum(infinities);
  if ((threadIdx.x & 31) == 0) {
    if (nans) atomicAdd(counts, nans);
    if (infinities) atomicAdd(counts + 1, infinities);
  }
}

}  // namespace

template <typename T>
NonfiniteCounts count_nonfinite_cuda(const T *x, int64_t n, int64_t *workspace, void *stream) {
  if (n == 0) return {0, 0};
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  auto *counts = reinterpret_cast<unsigned long long *>(workspace);
  cuda_check(cudaMemsetAsync(counts, 0, 2 * sizeof(unsigned long long), s), "cudaMemsetAsync");
  const bool aligned = reinterpret_cast<uintptr_t>(x) % 16 == 0;
  count_nonfinite_kernel<T><<<scan_blocks(n, 16 / int(sizeof(T))), kThreads, 0, s>>>(
      x, n, aligned, counts);
  cuda_check(cudaGetLastError(), "NaN/inf count kernel launch");
  unsigned long long host[2] = {0, 0};
  cuda_check(cudaMemcpyAsync(host, counts, sizeof(host), cudaMemcpyDeviceToHost, s),
             "cudaMemcpyAsync (NaN/inf counts)");
  cuda_check(cudaStreamSynchronize(s), "NaN/inf count");
  return {int64_t(host[0]), int64_t(host[1])};
}

template NonfiniteCounts count_nonfinite_cuda<float>(const float *, int64_t, int64_t *, void *);
template NonfiniteCounts count_nonfinite_cuda<double>(const double *, int64_t, int64_t *, void *);

}  // namespace nearzero
