// Radix selection of |x| order statistics on the GPU (see threshold_cuda.h), mirroring
// cpu/threshold_cpu.cpp: per level one histogram pass, then either a pass for the bucket bounds
// (the two ranks fell in different buckets), a copy of a small bucket, or the next level.
#include "cuda/cuda_check.h"
#include "cuda/flat_scan_cuda.cuh"
#include "cuda/threshold_cuda.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace nearzero {
namespace {
using namespace flat_scan;

constexpr int kDigitBits = 11;
constexpr int kBins = 1 << kDigitBits;
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
    histogram_kernel(const T *src, int64_t n, bool aligned, typename KeyTraits<T>::Key prefix,
                     typename KeyTraits<T>::Key prefix_mask, int shift,
                     typename KeyTraits<T>::Key digit_mask, unsigned long long *histogram,
                     unsigned long long *nan_count) {
  using Traits = KeyTraits<T>;
  __shared__ unsigned int bins[kBins];
  for (int b = threadIdx.x; b < kBins; b += blockDim.x) bins[b] = 0;
  __syncthreads();
  unsigned long long nans = 0;
  visit_elements(src, n, aligned, [&](T v, bool valid) {
    const typename Traits::Key key = abs_key(v);
    const bool is_nan = valid && key > Traits::kInfinity;
    nans += is_nan;
    const bool counted = valid && !is_nan && (key & prefix_mask) == prefix;
    add_to_histogram(bins, counted ? int((key >> shift) & digit_mask) : -1);
  });
  __syncthreads();
  for (int b = threadIdx.x; b <= int(digit_mask); b += blockDim.x)
    if (bins[b]) atomicAdd(histogram + b, static_cast<unsigned long long>(bins[b]));
  nans = warp_sum(nans);
  if ((threadIdx.x & 31) == 0 && nans) atomicAdd(nan_count, nans);
}

// Copies the |x| of every element in the bucket `prefix` to `out` (in no particular order).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    collect_kernel(const T *src, int64_t n, bool aligned, typename KeyTraits<T>::Key prefix,
                   typename KeyTraits<T>::Key prefix_mask, T *out, unsigned long long *counter) {
  using Traits = KeyTraits<T>;
  const unsigned lane = threadIdx.x & 31;
  visit_elements(src, n, aligned, [&](T v, bool valid) {
    const typename Traits::Key key = abs_key(v);
    const bool take = valid && key <= Traits::kInfinity && (key & prefix_mask) == prefix;
    const unsigned ballot = __ballot_sync(kFullWarp, take);
    if (ballot == 0) return;
    unsigned long long base = 0;
    if (lane == 0) base = atomicAdd(counter, static_cast<unsigned long long>(__popc(ballot)));
    base = __shfl_sync(kFullWarp, base, 0);
    if (take) out[base + __popc(ballot & ((1u << lane) - 1u))] = key_value(key, T(0));
  });
}

// The largest key of bucket `low_prefix` and the smallest of bucket `high_prefix`.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    bucket_bounds_kernel(const T *src, int64_t n, bool aligned, typename KeyTraits<T>::Key mask,
                         typename KeyTraits<T>::Key low_prefix,
                         typename KeyTraits<T>::Key high_prefix,
                         typename KeyTraits<T>::Key *bounds) {
  using Traits = KeyTraits<T>;
  using Key = typename Traits::Key;
  Key low = 0, high = ~Key(0);
  visit_elements(src, n, aligned, [&](T v, bool valid) {
    const Key key = abs_key(v);
    if (!valid || key > Traits::kInfinity) return;
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

// Finds the digit holding 0-based `rank`; turns `rank` into the rank inside that digit's bucket.
int locate_digit(const std::vector<unsigned long long> &hist, int bins, int64_t &rank) {
  for (int d = 0; d < bins; ++d) {
    if (rank < int64_t(hist[size_t(d)])) return d;
    rank -= int64_t(hist[size_t(d)]);
  }
  throw std::logic_error("nearzero: CUDA threshold selection lost an element (internal error)");
}

bool is_aligned(const void *p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <typename T> T key_value_host(typename KeyTraits<T>::Key key) {
  T value;
  std::memcpy(&value, &key, sizeof(T));
  return value;
}

}  // namespace

template <typename T>
AbsOrderStatistics<T> select_abs_order_statistics_cuda(const T *x, int64_t n, double fraction,
                                                       T *scratch, int64_t scratch_capacity,
                                                       int64_t *workspace, void *stream) {
  using Traits = KeyTraits<T>;
  using Key = typename Traits::Key;
  constexpr int kPerThread = 16 / int(sizeof(T));
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  auto *histogram = reinterpret_cast<unsigned long long *>(workspace);
  unsigned long long *nan_slot = histogram + kBins, *counter = histogram + kBins + 1;
  Key *bounds = reinterpret_cast<Key *>(histogram + kBins + 2);
  std::vector<unsigned long long> host(kBins + 1);

  const T *src = x;
  int64_t src_n = n;
  Key prefix = 0, prefix_mask = 0;
  int64_t rank_low = 0, rank_high = 0, count = 0, nan_count = 0;
  int shift = Traits::kValueBits;
  bool first_level = true;
  while (shift > 0) {
    const int width = std::min(kDigitBits, shift);
    shift -= width;
    const Key digit_mask = (Key(1) << width) - 1;
    cuda_check(cudaMemsetAsync(histogram, 0, (kBins + 1) * sizeof(unsigned long long), s),
               "cudaMemsetAsync (threshold histogram)");
    histogram_kernel<T><<<scan_blocks(src_n, kPerThread), kThreads, 0, s>>>(
        src, src_n, is_aligned(src), prefix, prefix_mask, shift, digit_mask, histogram, nan_slot);
    cuda_check(cudaGetLastError(), "threshold histogram kernel launch");
    cuda_check(cudaMemcpyAsync(host.data(), histogram, host.size() * sizeof(unsigned long long),
                               cudaMemcpyDeviceToHost, s),
               "cudaMemcpyAsync (threshold histogram)");
    cuda_check(cudaStreamSynchronize(s), "threshold histogram");

    if (first_level) {
      nan_count = int64_t(host[kBins]);
      count = n - nan_count;
      if (count <= 0) return {T(0), T(0), 0, nan_count};  // nothing to select: caller reports
      const double idx = double(count - 1) * fraction;
      rank_low = std::clamp<int64_t>(int64_t(std::floor(idx)), 0, count - 1);
      rank_high = std::clamp<int64_t>(int64_t(std::ceil(idx)), 0, count - 1);
      first_level = false;
    }
    const int digit_low = locate_digit(host, int(digit_mask) + 1, rank_low);
    const int digit_high = locate_digit(host, int(digit_mask) + 1, rank_high);
    const Key next_mask = prefix_mask | (digit_mask << shift);
    const Key prefix_low = prefix | (Key(digit_low) << shift);
    const Key prefix_high = prefix | (Key(digit_high) << shift);

    if (digit_low != digit_high) {
      // low is the largest key of its bucket and high the smallest of its own: one more pass.
      const Key initial[2] = {Key(0), ~Key(0)};
      cuda_check(cudaMemcpyAsync(bounds, initial, sizeof(initial), cudaMemcpyHostToDevice, s),
                 "cudaMemcpyAsync (threshold bounds)");
      bucket_bounds_kernel<T><<<scan_blocks(src_n, kPerThread), kThreads, 0, s>>>(
          src, src_n, is_aligned(src), next_mask, prefix_low, prefix_high, bounds);
      cuda_check(cudaGetLastError(), "threshold bounds kernel launch");
      Key result[2] = {0, 0};
      cuda_check(cudaMemcpyAsync(result, bounds, sizeof(result), cudaMemcpyDeviceToHost, s),
                 "cudaMemcpyAsync (threshold bounds)");
      cuda_check(cudaStreamSynchronize(s), "threshold bounds");
      return {key_value_host<T>(result[0]), key_value_host<T>(result[1]), count, nan_count};
    }
    prefix = prefix_low;
    prefix_mask = next_mask;
    const int64_t bucket = int64_t(host[size_t(digit_low)]);
    if (shift > 0 && src == x && bucket <= scratch_capacity && bucket <= n / 2) {
      // Later levels read only the bucket: one copy pass instead of a full pass per level.
      cuda_check(cudaMemsetAsync(counter, 0, sizeof(unsigned long long), s),
                 "cudaMemsetAsync (threshold bucket)");
      collect_kernel<T><<<scan_blocks(n, kPerThread), kThreads, 0, s>>>(
          x, n, is_aligned(x), prefix, prefix_mask, scratch, counter);
      cuda_check(cudaGetLastError(), "threshold bucket copy kernel launch");
      src = scratch;
      src_n = bucket;
    }
  }
  // Every bit is fixed: both ranks hold the same value.
  return {key_value_host<T>(prefix), key_value_host<T>(prefix), count, nan_count};
}

template AbsOrderStatistics<float>
select_abs_order_statistics_cuda<float>(const float *, int64_t, double, float *, int64_t,
                                        int64_t *, void *);
template AbsOrderStatistics<double>
select_abs_order_statistics_cuda<double>(const double *, int64_t, double, double *, int64_t,
                                         int64_t *, void *);

}  // namespace nearzero
