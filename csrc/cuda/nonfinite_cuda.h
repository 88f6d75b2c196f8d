// Counts of NaN and of +-inf in a flat device array, for nan_policy="raise" and for choosing the
// matmul kernel (infinities need the exact path). Defined in nonfinite_cuda.cu.
#pragma once
#include <cstdint>

namespace nearzero {

struct NonfiniteCounts {
  int64_t nans;
  int64_t infinities;
};

// `workspace`: 2 int64 of device memory. Waits for the result on `stream`.
template <typename T>
NonfiniteCounts count_nonfinite_cuda(const T *x, int64_t n, int64_t *workspace, void *stream);

}  // namespace nearzero
