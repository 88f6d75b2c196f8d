// Radix selection of |x| order statistics on the GPU (see threshold_cuda.h): the passes over
// the data for the levels of common/radix_select.h, which cpu/threshold_cpu.cpp walks too. Per
// level one histogram pass, then either a pass for the bucket bounds (the two ranks fell in
// different buckets), a copy of a small bucket, or the next level.
#include "cuda/cuda_check.h"
#include "cuda/flat_scan_cuda.cuh"
#include "cuda/threshold_cuda.h"

#include <cstdint>
#include <vector>

namespace nearzero {
namespace {
using namespace flat_scan;

using radix::kBins;
constexpr unsigned kFullWarp = 0xffffffffu;

// Adds one lane's bin (-1: none) to a shared histogram. When the whole warp hits one bin (common
// for data with many equal values, e.g. zeros) it is a single atomic instead of 32 colliding ones.
__device__ __forceinline__ void add_to_histogram(unsigned int *bins, int bin) {
  const int first = __shfl_sync(kFullWarp, bin, 0);
  if (__all_sync(kFullWarp, bin == first)) {
    if (first >= 0 && (threadIdx.x & 31) == 0) atomicAdd(bins + first, 32u);
    return;
  }
  if (bin >= 0) atomicAdd(bins + bin, 1u);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    histogram_kernel(const T *src, int64_t n, bool aligned,
                     radix::Level<typename KeyTraits<T>::Key> level,
                     unsigned long long *histogram, unsigned long long *nan_count) {
  __shared__ unsigned int bins[kBins];
  for (int b = threadIdx.x; b < kBins; b += blockDim.x) bins[b] = 0;
  __syncthreads();
  unsigned long long nans = 0;
  visit_elements(src, n, aligned, [&](T v, bool valid) {
    const auto key = abs_key(v);
    const bool is_nan = valid && radix::is_nan_key(key);
    nans += is_nan;
    const bool counted = valid && !is_nan && level.holds(key);
    add_to_histogram(bins, counted ? level.digit(key) : -1);
  });
  __syncthreads();
  for (int b = threadIdx.x; b <= int(level.digit_mask); b += blockDim.x)
    if (bins[b]) atomicAdd(histogram + b, static_cast<unsigned long long>(bins[b]));
  nans = warp_sum(nans);
  if ((threadIdx.x & 31) == 0 && nans) atomicAdd(nan_count, nans);
}

// Copies the |x| of every element in the bucket `prefix` to `out` (in no particular order).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    collect_kernel(const T *src, int64_t n, bool aligned,
                   radix::Level<typename KeyTraits<T>::Key> bucket, T *out,
                   unsigned long long *counter) {
  const unsigned lane = threadIdx.x & 31;
  visit_elements(src, n, aligned, [&](T v, bool valid) {
    const auto key = abs_key(v);
    const bool take = valid && !radix::is_nan_key(key) && bucket.holds(key);
    const unsigned ballot = __ballot_sync(kFullWarp, take);
    if (ballot == 0) return;
    unsigned long long base = 0;
    if (lane == 0) base = atomicAdd(counter, static_cast<unsigned long long>(__popc(ballot)));
    base = __shfl_sync(kFullWarp, base, 0);
    if (take) out[base + __popc(ballot & ((1u << lane) - 1u))] = radix::key_value<T>(key);
  });
}

// The largest key of bucket `low_prefix` and the smallest of bucket `high_prefix`.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    bucket_bounds_kernel(const T *src, int64_t n, bool aligned, typename KeyTraits<T>::Key mask,
                         typename KeyTraits<T>::Key low_prefix,
                         typename KeyTraits<T>::Key high_prefix,
                         typename KeyTraits<T>::Key *bounds) {
  using Key = typename KeyTraits<T>::Key;
  Key low = 0, high = ~Key(0);
  visit_elements(src, n, aligned, [&](T v, bool valid) {
    const Key key = abs_key(v);
    if (!valid || radix::is_nan_key(key)) return;
    if ((key & mask) == low_prefix) low = max(low, key);
    if ((key & mask) == high_prefix) high = min(high, key);
  });
  for (int offset = 16; offset > 0; offset >>= 1) {
    low = max(low, __shfl_xor_sync(kFullWarp, low, offset));
    high = min(high, __shfl_xor_sync(kFullWarp, high, offset));
  }
  if ((threadIdx.x & 31) == 0) {
    atomicMax(bounds, low);
    atomicMin(bounds + 1, high);
  }
}

bool is_aligned(const void *p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

template <typename T>
AbsOrderStatistics<T> select_abs_order_statistics_cuda(const T *x, int64_t n, double fraction,
                                                       T *scratch, int64_t scratch_capacity,
                                                       int64_t *workspace, void *stream) {
  using Key = typename KeyTraits<T>::Key;
  constexpr int kPerThread = 16 / int(sizeof(T));
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  auto *histogram = reinterpret_cast<unsigned long long *>(workspace);
  unsigned long long *nan_slot = histogram + kBins, *counter = histogram + kBins + 1;
  Key *bounds = reinterpret_cast<Key *>(histogram + kBins + 2);
  std::vector<unsigned long long> host(kBins + 1);

  const T *src = x;
  int64_t src_n = n;
  radix::Select<T> select;
  while (select.next_level()) {
    cuda_check(cudaMemsetAsync(histogram, 0, (kBins + 1) * sizeof(unsigned long long), s),
               "cudaMemsetAsync (threshold histogram)");
    histogram_kernel<T><<<scan_blocks(src_n, kPerThread), kThreads, 0, s>>>(
        src, src_n, is_aligned(src), select.level(), histogram, nan_slot);
    cuda_check(cudaGetLastError(), "threshold histogram kernel launch");
    cuda_check(cudaMemcpyAsync(host.data(), histogram, host.size() * sizeof(unsigned long long),
                               cudaMemcpyDeviceToHost, s),
               "cudaMemcpyAsync (threshold histogram)");
    cuda_check(cudaStreamSynchronize(s), "threshold histogram");

    if (!select.started() && !select.start(n, int64_t(host[kBins]), fraction, 1))
      return select.empty();
    select.locate(host.data());
    if (select.split()) {
      const Key initial[2] = {Key(0), ~Key(0)};
      cuda_check(cudaMemcpyAsync(bounds, initial, sizeof(initial), cudaMemcpyHostToDevice, s),
                 "cudaMemcpyAsync (threshold bounds)");
      bucket_bounds_kernel<T><<<scan_blocks(src_n, kPerThread), kThreads, 0, s>>>(
          src, src_n, is_aligned(src), select.next_mask(), select.low_prefix(),
          select.high_prefix(), bounds);
      cuda_check(cudaGetLastError(), "threshold bounds kernel launch");
      Key result[2] = {0, 0};
      cuda_check(cudaMemcpyAsync(result, bounds, sizeof(result), cudaMemcpyDeviceToHost, s),
                 "cudaMemcpyAsync (threshold bounds)");
      cuda_check(cudaStreamSynchronize(s), "threshold bounds");
      return select.result(result[0], result[1]);
    }
    select.descend();
    const int64_t bucket = select.bucket();
    if (select.more_levels() && src == x && bucket <= scratch_capacity && bucket <= n / 2) {
      // Later levels read only the bucket: one copy pass instead of a full pass per level.
      cuda_check(cudaMemsetAsync(counter, 0, sizeof(unsigned long long), s),
                 "cudaMemsetAsync (threshold bucket)");
      collect_kernel<T><<<scan_blocks(n, kPerThread), kThreads, 0, s>>>(
          x, n, is_aligned(x), select.level(), scratch, counter);
      cuda_check(cudaGetLastError(), "threshold bucket copy kernel launch");
      src = scratch;
      src_n = bucket;
    }
  }
  return select.settled();
}

template AbsOrderStatistics<float>
select_abs_order_statistics_cuda<float>(const float *, int64_t, double, float *, int64_t,
                                        int64_t *, void *);
template AbsOrderStatistics<double>
select_abs_order_statistics_cuda<double>(const double *, int64_t, double, double *, int64_t,
                                         int64_t *, void *);

}  // namespace nearzero
