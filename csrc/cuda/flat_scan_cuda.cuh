// Building blocks of the one-pass scans over a flat array (threshold selection, NaN/inf
// counts): |x| as an ordered integer key, and a warp-uniform element walk with 16-byte loads.
// Included by threshold_cuda.cu and nonfinite_cuda.cu only.
#pragma once
#include "common/radix_select.h"
#include "cuda/warp_cuda.cuh"

#include <cstdint>

namespace nearzero {
namespace flat_scan {

constexpr int kThreads = 256;

// |x| as an ordered integer key: the radix select's keys (common/radix_select.h).
using radix::abs_key;
using radix::KeyTraits;

// 16 bytes of values, read with one load.
template <typename T> struct VectorOf;
template <> struct VectorOf<float> { using Type = float4; };
template <> struct VectorOf<double> { using Type = double2; };

__device__ __forceinline__ void unpack(const float4 &v, float (&out)[4]) {
  out[0] = v.x;
  out[1] = v.y;
  out[2] = v.z;
  out[3] = v.w;
}
__device__ __forceinline__ void unpack(const double2 &v, double (&out)[2]) {
  out[0] = v.x;
  out[1] = v.y;
}

// Calls visit(value, valid) for the elements of src[0, n) this thread owns. All 32 lanes of a
// warp make the same number of calls (lanes past the end get valid == false), so `visit` may
// use warp votes and shuffles. `aligned`: src is 16-byte aligned, so vector loads are used.
template <typename T, typename Visit>
__device__ __forceinline__ void visit_elements(const T *src, int64_t n, bool aligned, Visit visit) {
  constexpr int kPerVector = 16 / int(sizeof(T));
  using Vector = typename VectorOf<T>::Type;
  const int64_t thread = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t lane = threadIdx.x & 31;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  int64_t start = 0;
  if (aligned) {
    const int64_t vectors = n / kPerVector;
    const Vector *v = reinterpret_cast<const Vector *>(src);
    for (int64_t first = thread - lane; first < vectors; first += stride) {
      const int64_t i = first + lane;
      const bool valid = i < vectors;
      T values[kPerVector];
      if (valid) {
        unpack(v[i], values);
      } else {
#pragma unroll
        for (int e = 0; e < kPerVector; ++e) values[e] = T(0);
      }
#pragma unroll
      for (int e = 0; e < kPerVector; ++e) visit(values[e], valid);
    }
    start = vectors * kPerVector;
  }
  for (int64_t first = start + thread - lane; first < n; first += stride) {
    const int64_t i = first + lane;
    const bool valid = i < n;
    visit(valid ? src[i] : T(0), valid);
  }
}

// Blocks for a scan of n elements: enough to fill the device, never more than the work.
int scan_blocks(int64_t n, int elements_per_thread);

}  // namespace flat_scan
}  // namespace nearzero
