// The exact per-cell classify kernel for inputs the tiled kernel cannot take: +-inf (its masked
// planes would turn 0 * inf into NaN in other classes) or k >= 2^31 (its int32 counters).
// One thread per cell walks k through the same gather policy as the tiled kernel and sums
// pair by pair in double. Slow; included through gather_classify_cuda.cuh only.
#pragma once
#include "common/classify_rule.h"
#include "cuda/classify_output_cuda.cuh"
#include "cuda/cuda_check.h"
#include "cuda/device_info_cuda.h"
#include "cuda/tiled_slice_cuda.cuh"

#include <algorithm>

namespace nearzero {
namespace exact {

constexpr int kThreads = 128;

template <typename T, typename Gather>
__global__ void __launch_bounds__(kThreads) exact_classify_kernel(Gather g, ClassifyOutput out) {
  const int64_t cells = g.batches * g.n * g.m;
  for (int64_t index = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; index < cells;
       index += int64_t(gridDim.x) * blockDim.x) {
    const int64_t batch = index / (g.n * g.m), i = (index / g.m) % g.n, j = index % g.m;
    const tiled::Row row = g.row(batch, i);
    const tiled::Column column = g.column(batch, j);
    const int64_t cell = row.cell + column.cell;
    if (out.mode != ReduceMode::kNone && !cell_wanted(out, cell)) continue;
    int64_t counts[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    double sums[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t kk = 0; kk < g.k; ++kk) {
      const tiled::Depth depth = g.depth(batch, kk);
      const T a = g.x_value(row, depth), b = g.y_value(depth, column);
      const int ca = classify_value(a, g.x_threshold), cb = classify_value(b, g.y_threshold);
      if (ca == kNoClass || cb == kNoClass) continue;
      const int pair = class_pair_index(ca, cb);
      const double product = double(a) * double(b);
#pragma unroll
      for (int q = 0; q < 9; ++q) {  // selects keep the arrays in registers
        counts[q] += pair == q;
        sums[q] += pair == q ? product : 0.0;
      }
    }
    if (out.mode == ReduceMode::kNone)
      store_cell<T>(out, cell, counts, sums);
    else
      device_output::add_cell_atomic(out, cell, counts, sums);
  }
}

template <typename T, typename Gather>
void launch(const Gather &g, const ClassifyOutput &out, void *stream) {
  const int64_t cells = g.batches * g.n * g.m;
  if (cells == 0) return;
  const int64_t blocks = std::min<int64_t>((cells + kThreads - 1) / kThreads,
                                           int64_t(multiprocessor_count()) * 64);
  exact_classify_kernel<T, Gather><<<unsigned(blocks), kThreads, 0,
                                     static_cast<cudaStream_t>(stream)>>>(g, out);
  cuda_check(cudaGetLastError(), "classify (exact) kernel launch");
}

}  // namespace exact
}  // namespace nearzero
