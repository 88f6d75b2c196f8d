// Runs a gather policy (tiled_slice_cuda.cuh) through the tiled kernel, or through the exact
// kernel for inputs the tiled one cannot take: +-inf or k >= 2^31. Included by matmul_cuda.cu
// and the conv_*_cuda.cu files.
#pragma once
#include "common/result_descriptor.h"
#include "cuda/exact_classify_cuda.cuh"
#include "cuda/tiled_classify_cuda.cuh"

#include <climits>
#include <cstdint>

namespace nearzero {
namespace gather {

inline bool uses_tiled_kernel(int64_t k, bool has_infinity) {
  return !has_infinity && k <= INT_MAX;
}

// Doubles of device scratch classify() needs for this k on the current device (0: none).
template <typename T, typename Gather> int64_t scratch_doubles(int64_t k, bool has_infinity) {
  return uses_tiled_kernel(k, has_infinity) ? tiled::scratch_doubles<T, Gather>(k) : 0;
}

template <typename T, typename Gather>
void classify(const Gather &g, const ClassifyOutput &out, bool has_infinity, double *scratch,
              int64_t scratch_doubles, void *stream) {
  if (g.batches == 0 || g.n == 0 || g.m == 0) return;
  if (uses_tiled_kernel(g.k, has_infinity))
    tiled::launch<T>(g, out, scratch, scratch_doubles, stream);
  else
    exact::launch<T>(g, out, stream);
}

}  // namespace gather
}  // namespace nearzero
