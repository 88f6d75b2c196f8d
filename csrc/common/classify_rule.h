// The P/Z/N classification rule and the class-pair index: the one definition every kernel uses.
// Included by the CPU kernels (g++) and the CUDA kernels (nvcc); it must stay free of any
// library header so that CPU-only builds compile and test the very function the GPU runs.
#pragma once

#if defined(__CUDACC__)
#define NEARZERO_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define NEARZERO_HOST_DEVICE inline
#endif

namespace nearzero {

// Class codes. kNoClass marks NaN (and, in convolutions, padding): it belongs to no class.
constexpr int kPositive = 0;
constexpr int kNearZero = 1;
constexpr int kNegative = 2;
constexpr int kNoClass = 3;
constexpr int kClassCount = 3;
constexpr int kPairCount = 9;

// Z when x == 0 or |x| < threshold; P when x > 0 otherwise; N when x < 0 otherwise.
// +inf is P, -inf is N, NaN is kNoClass. `threshold` must already be in x's compute type.
// Every kernel MUST classify through this function.
// Written without branches: classes of real data are random, and mispredicted branches cost the
// CPU packing loops more than the comparisons.
template <typename T> NEARZERO_HOST_DEVICE int classify_value(T x, T threshold) {
  const bool positive = x > T(0), negative = x < T(0);
  const T magnitude = negative ? -x : x;
  // Away from zero: nonzero and not below the threshold (NaN is neither positive nor negative).
  const bool away = (positive || negative) && !(magnitude < threshold);
  const int near_or_nan = x == x ? kNearZero : kNoClass;  // only NaN differs from itself
  return away ? 2 * int(negative) : near_or_nan;  // kPositive = 0, kNegative = 2
}

// Index of the pair (class of first input, class of second input): PP=0, PZ=1, ..., NN=8.
NEARZERO_HOST_DEVICE int class_pair_index(int first_class, int second_class) {
  return 3 * first_class + second_class;
}

}  // namespace nearzero
