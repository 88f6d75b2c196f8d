// Building blocks of the one-pass scans over a flat array (threshold selection, NaN/inf
// counts): |x| as an ordered integer key, and a warp-uniform element walk with 16-byte loads.
// Included by threshold_cuda.cu and nonfinite_cuda.cu only.
#pragma once
#include <cstdint>

namespace nearzero {
namespace flat_scan {

constexpr int kThreads = 256;

// Non-negative IEEE floats order like their bit patterns, so |x| is compared as bits(x) & ~sign.
template <typename T> struct KeyTraits;
template <> struct KeyTraits<float> {
  using Key = unsigned int;
  static constexpr int kValueBits = 31;
  static constexpr Key kInfinity = 0x7F800000u;
  using Vector = float4;
};
template <> struct KeyTraits<double> {
  using Key = unsigned long long;
  static constexpr int kValueBits = 63;
  static constexpr Key kInfinity = 0x7FF0000000000000ull;
  using Vector = double2;
};

__device__ __forceinline__ unsigned int abs_key(float v) {
  return __float_as_uint(v) & 0x7FFFFFFFu;
}
__device__ __forceinline__ unsigned long long abs_key(double v) {
  return static_cast<unsigned long long>(__double_as_longlong(v)) & 0x7FFFFFFFFFFFFFFFull;
}
__device__ __forceinline__ float key_value(unsigned int k, float) { return __uint_as_float(k); }
__device__ __forceinline__ double key_value(unsigned long long k, double) {
  return __longlong_as_double(static_cast<long long>(k));
}

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
  using Vector = typename KeyTraits<T>::Vector;
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

template <typename V> __device__ __forceinline__ V warp_sum(V v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Blocks for a scan of n elements: enough to fill the device, never more than the work.
int scan_blocks(int64_t n, int elements_per_thread);

}  // namespace flat_scan
}  // namespace nearzero
