// Device-side reductions of classify results into a ClassifyOutput: per-cell atomics and
// block-level sums with one atomic per slot and pair. Full-result stores, the mask and the
// reduction slots are common/cell_store.h's, as on the CPU. Included by the .cu kernels only.
#pragma once
#include "common/cell_store.h"
#include "common/result_descriptor.h"
#include "cuda/warp_cuda.cuh"

#include <cstdint>

namespace nearzero {
namespace device_output {

__device__ __forceinline__ void atomic_add_count(int64_t *address, int64_t value) {
  atomicAdd(reinterpret_cast<unsigned long long *>(address),
            static_cast<unsigned long long>(value));
}

// Adds one cell straight into the reduced result with global atomics (slow paths only).
template <typename C, typename V>
__device__ __forceinline__ void add_cell_atomic(const ClassifyOutput &out, int64_t cell,
                                                const C *counts, const V *sums) {
  if (!cell_wanted(out, cell)) return;
  const int64_t slot = cell_slot(out, cell);
  int64_t *c = static_cast<int64_t *>(out.counts) + slot * out.pairs;
  double *s = static_cast<double *>(out.sums) + slot * out.pairs;
  for (int p = 0; p < out.pairs; ++p) {
    if (counts[p] != 0) atomic_add_count(c + p, int64_t(counts[p]));
    if (sums[p] != V(0)) atomicAdd(s + p, double(sums[p]));
  }
}

// Sums every thread's partial counts and sums of one reduction slot over the block and adds the
// total to the result with one atomic per pair. Every thread of the block must call it.
template <int kPairs>
__device__ void block_add_to_slot(const ClassifyOutput &out, int64_t slot,
                                  int64_t (&counts)[kPairs], double (&sums)[kPairs]) {
  __shared__ int64_t warp_counts[32][kPairs];
  __shared__ double warp_sums[32][kPairs];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  for (int p = 0; p < kPairs; ++p) {
    const int64_t c = warp_sum(counts[p]);
    const double s = warp_sum(sums[p]);
    if (lane == 0) {
      warp_counts[warp][p] = c;
      warp_sums[warp][p] = s;
    }
  }
  __syncthreads();
  if (threadIdx.x < kPairs) {
    const int p = threadIdx.x;
    int64_t c = 0;
    double s = 0.0;
    for (int w = 0; w < warps; ++w) {
      c += warp_counts[w][p];
      s += warp_sums[w][p];
    }
    if (c != 0) atomic_add_count(static_cast<int64_t *>(out.counts) + slot * kPairs + p, c);
    if (s != 0.0) atomicAdd(static_cast<double *>(out.sums) + slot * kPairs + p, s);
  }
  __syncthreads();  // the shared partials are reused by the next call
}

}  // namespace device_output
}  // namespace nearzero
