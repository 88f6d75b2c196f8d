// The P/Z/N classification rule and the class-pair index: the one definition every kernel uses.
// Included by the CPU kernels (g++) and the CUDA kernels (nvcc); it must stay free of any
// library header so that CPU-only builds compile and test the very function the GPU runs.
#pragma once
#include "common/host_device.h"

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
// Written without branches or short-circuits, so that compilers vectorise loops over it: classes
// of real data are random, and mispredicted branches cost more than the comparisons.
template <typename T> NEARZERO_HOST_DEVICE int classify_value(T x, T threshold) {
  const int positive = x > T(0), negative = x < T(0);
  const T magnitude = x < T(0) ? -x : x;
  const int below = magnitude < threshold, nan = x != x;  // NaN: no sign, not below, unequal
  const int away = (positive | negative) & (below ^ 1);    // P or N; otherwise Z or NaN
  return away * (kNegative * negative) + (away ^ 1) * (kNearZero + 2 * nan);  // P=0 Z=1 N=2 NaN=3
}

// Index of the pair (class of first input, class of second input): PP=0, PZ=1, ..., NN=8.
NEARZERO_HOST_DEVICE int class_pair_index(int first_class, int second_class) {
  return 3 * first_class + second_class;
}

}  // namespace nearzero
