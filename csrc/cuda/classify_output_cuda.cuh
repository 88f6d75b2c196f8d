// Device-side emission of classify results: full-result stores, per-cell atomics and block-level
// reductions into DeviceOutput. Included by the .cu kernels only. The tiled kernel
// (tiled_classify_cuda.cuh) stores its cells inline by the same rules: masked-out cells written as
// zeros, reductions summed per slot in shared memory, then one atomic per slot and pair.
#pragma once
#include "cuda/classify_output_cuda.h"

#include <cstdint>

namespace nearzero {
namespace device_output {

__device__ __forceinline__ bool cell_wanted(const DeviceOutput &out, int64_t cell) {
  return out.mask == nullptr || out.mask[cell] != 0;
}

__device__ __forceinline__ int64_t cell_slot(const DeviceOutput &out, int64_t cell) {
  return out.mode == ReduceMode::kChannel ? (cell / out.channel_inner) % out.channels : 0;
}

__device__ __forceinline__ void atomic_add_count(int64_t *address, int64_t value) {
  atomicAdd(reinterpret_cast<unsigned long long *>(address),
            static_cast<unsigned long long>(value));
}

// One cell of the full result; masked-out cells are written as zeros (as on the CPU).
template <typename S, typename C, typename V>
__device__ __forceinline__ void store_cell(const DeviceOutput &out, int64_t cell, const C *counts,
                                           const V *sums) {
  const bool keep = cell_wanted(out, cell);
  const int64_t base = cell * out.cell_stride;
  S *sum_out = static_cast<S *>(out.sums);
  for (int p = 0; p < out.pairs; ++p) {
    const int64_t at = base + p * out.pair_stride;
    const int64_t c = keep ? int64_t(counts[p]) : 0;
    if (out.counts_int64)
      static_cast<int64_t *>(out.counts)[at] = c;
    else
      static_cast<int32_t *>(out.counts)[at] = int32_t(c);
    sum_out[at] = keep ? S(sums[p]) : S(0);
  }
}

// Adds one cell straight into the reduced result with global atomics (slow paths only).
template <typename C, typename V>
__device__ __forceinline__ void add_cell_atomic(const DeviceOutput &out, int64_t cell,
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

template <typename V> __device__ __forceinline__ V warp_sum(V v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sums every thread's partial counts and sums of one reduction slot over the block and adds the
// total to the result with one atomic per pair. Every thread of the block must call it.
template <int kPairs>
__device__ void block_add_to_slot(const DeviceOutput &out, int64_t slot, int64_t (&counts)[kPairs],
                                  double (&sums)[kPairs]) {
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
