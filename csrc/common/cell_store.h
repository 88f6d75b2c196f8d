// How a cell of a classify result is stored, for every kernel of both backends: whether the
// mask keeps it, its reduction slot, and the store into the full result (masked-out cells are
// written as zeros there and left out of reductions). The CPU's CellWriter
// (cpu/classify_output.h) and the CUDA kernels (cuda/classify_output_cuda.cuh,
// cuda/tiled_classify_cuda.cuh) store through these functions.
#pragma once
#include "common/host_device.h"
#include "common/result_descriptor.h"

#include <cstdint>

namespace nearzero {

NEARZERO_HOST_DEVICE bool cell_wanted(const ClassifyOutput &out, int64_t cell) {
  return out.mask == nullptr || out.mask[cell] != 0;
}

// The reduction slot of a cell: 0 for reduce="all", its channel for reduce="channel".
NEARZERO_HOST_DEVICE int64_t cell_slot(const ClassifyOutput &out, int64_t cell) {
  return out.mode == ReduceMode::kChannel ? (cell / out.channel_inner) % out.channels : 0;
}

// Pair `pair` of cell `cell` of the full result; zeros unless `keep`.
template <typename S>
NEARZERO_HOST_DEVICE void store_pair(const ClassifyOutput &out, int64_t cell, int pair,
                                     int64_t count, S sum, bool keep) {
  const int64_t at = cell * out.cell_stride + pair * out.pair_stride;
  if (out.counts_int64)
    static_cast<int64_t *>(out.counts)[at] = keep ? count : 0;
  else
    static_cast<int32_t *>(out.counts)[at] = keep ? int32_t(count) : 0;
  static_cast<S *>(out.sums)[at] = keep ? sum : S(0);
}

// One cell of the full result from its per-pair counts and sums (S: the result's sum type).
template <typename S, typename C, typename V>
NEARZERO_HOST_DEVICE void store_cell(const ClassifyOutput &out, int64_t cell, const C *counts,
                                     const V *sums) {
  const bool keep = cell_wanted(out, cell);
  for (int p = 0; p < out.pairs; ++p)
    store_pair(out, cell, p, int64_t(counts[p]), S(sums[p]), keep);
}

}  // namespace nearzero
