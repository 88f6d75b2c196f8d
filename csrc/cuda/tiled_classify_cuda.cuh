// The tiled fused classify kernel shared by matmul and the convolutions: a "gather GEMM" where
// a policy (the Gather template argument) says where the (i, k) element of the first operand,
// the (k, j) element of the second and the output cell (i, j) live. Addresses, cells and
// channels split into a row part, a column part and a depth (k) part, which the block keeps in
// small tables in shared memory: per tile for rows and columns, per k slice for depths.
//
// A block owns a 32 x 32 tile of cells (256 threads, 2 x 2 cells each) and walks k in slices
// of 32. Each slice is classified once while it is staged in shared memory as three masked
// planes (the value where its class matches, else 0) and as class bit masks over k; every
// thread then does 9 FMAs per product into register partial sums and counts with popcounts of
// ANDed masks. float sums are summed in three levels so that each class sum stays within SPEC
// §4's 1e-5 bound however long k is: registers (128 products), float totals in shared memory
// (16 register flushes, 2048 products), then double totals in a per-block global scratch.
// The grid is persistent (one wave of blocks looping over tiles) so that scratch stays small.
// Included through gather_classify_cuda.cuh only.
#pragma once
#include "cuda/classify_output_cuda.cuh"
#include "cuda/cuda_check.h"
#include "cuda/tiled_slice_cuda.cuh"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

namespace nearzero {
namespace tiled {

// Fills the row and column tables of a tile and the depth table of one slice; threads 0-31,
// 32-63 and 64-95 each fill one table.
template <typename T, typename Gather>
__device__ __forceinline__ void fill_tile_tables(Storage<T> &s, const Gather &g, int64_t batch,
                                                 int64_t i0, int64_t j0) {
  const int t = threadIdx.x;
  if (t < kTile) {
    if (i0 + t < g.n) s.rows[t] = g.row(batch, i0 + t);
  } else if (t < 2 * kTile) {
    if (j0 + t - kTile < g.m) s.columns[t - kTile] = g.column(batch, j0 + t - kTile);
  }
}

template <typename T, typename Gather>
__device__ __forceinline__ void fill_depth_table(Storage<T> &s, const Gather &g, int64_t batch,
                                                 int64_t k0, int buffer) {
  const int t = int(threadIdx.x) - 2 * kTile;
  if (t >= 0 && t < kTile && k0 + t < g.k) s.depths[buffer][t] = g.depth(batch, k0 + t);
}

template <typename T, typename Gather>
__global__ void __launch_bounds__(kThreads, kMinBlocks<T>)
    tiled_classify_kernel(Gather g, ClassifyOutput out, double *scratch) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  Storage<T> &s = *reinterpret_cast<Storage<T> *>(shared_raw);
  SlotTable &slots = *reinterpret_cast<SlotTable *>(&s.x_planes[0][0][0]);
  int32_t *count_totals = reinterpret_cast<int32_t *>(shared_raw + storage_bytes<T>());
  float *mid = reinterpret_cast<float *>(count_totals + kAccumulators * kThreads);
  double *top = scratch + int64_t(blockIdx.x) * kAccumulators * kThreads;
  const int row0 = (threadIdx.x / 16) * 2, col0 = (threadIdx.x % 16) * 2;
  const int64_t slices = (g.k + kTile - 1) / kTile;
  const int64_t tiles_n = (g.n + kTile - 1) / kTile, tiles_m = (g.m + kTile - 1) / kTile;
  const bool reduced = out.mode != ReduceMode::kNone;

  const int64_t tiles = g.batches * tiles_n * tiles_m;
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int64_t batch = tile / (tiles_n * tiles_m);
    const int64_t i0 = (tile / tiles_m) % tiles_n * kTile, j0 = tile % tiles_m * kTile;
    const int rows_valid = int(std::min<int64_t>(kTile, g.n - i0));
    const int columns_valid = int(std::min<int64_t>(kTile, g.m - j0));
    __syncthreads();  // the previous tile's epilogue has finished with the tables
    fill_tile_tables(s, g, batch, i0, j0);
    fill_depth_table(s, g, batch, 0, 0);
    T acc[kCells][9];
    uint32_t packed[9];
#pragma unroll
    for (int q = 0; q < 9; ++q) {
      packed[q] = 0;
#pragma unroll
      for (int cell = 0; cell < kCells; ++cell) acc[cell][q] = T(0);
    }
    for (int q = 0; q < kAccumulators; ++q) {
      count_totals[q * kThreads + threadIdx.x] = 0;
      if constexpr (kFloatSums<T>) mid[q * kThreads + threadIdx.x] = 0.0f;
    }
    bool top_used = false;
    __syncthreads();

    T x_next[kLoads], y_next[kLoads];
    if (slices > 0)
      load_slice(g, s, 0, rows_valid, columns_valid, int(std::min<int64_t>(kTile, g.k)), x_next,
                 y_next);
    for (int64_t slice = 0; slice < slices; ++slice) {
      const int64_t next_k0 = (slice + 1) * kTile;
      __syncthreads();  // every thread has finished reading the previous slice
      store_slice(s, g, x_next, y_next);
      if (slice + 1 < slices) fill_depth_table(s, g, batch, next_k0, int((slice + 1) % 2));
      __syncthreads();
      if (slice + 1 < slices)  // in flight while this slice is multiplied
        load_slice(g, s, int((slice + 1) % 2), rows_valid, columns_valid,
                   int(std::min<int64_t>(kTile, g.k - next_k0)), x_next, y_next);
      build_bits(s);
      __syncthreads();
      multiply_slice(s, row0, col0, acc, packed);
      if ((slice + 1) % kFlushSlices == 0) {
        flush_counts(count_totals, packed);
        if constexpr (kFloatSums<T>) {
          flush_sums(mid, acc);
          if ((slice + 1) % (kFlushSlices * kMidFlushes) == 0) {
            flush_mid(mid, top, !top_used);
            top_used = true;
          }
        }
      }
    }
    flush_counts(count_totals, packed);

    if (reduced) {  // the slot table overlays the planes: wait until every thread is done
      __syncthreads();
      for (int q = threadIdx.x; q < kTile * 9; q += kThreads) {
        (&slots.counts[0][0])[q] = 0;
        (&slots.sums[0][0])[q] = 0.0;
      }
      __syncthreads();
    }
#pragma unroll
    for (int cell = 0; cell < kCells; ++cell) {
      const int r = row0 + cell / 2, t = col0 + cell % 2;
      if (r >= rows_valid || t >= columns_valid) continue;
      const int64_t flat = s.rows[r].cell + s.columns[t].cell;
      const bool keep = cell_wanted(out, flat);
      const int slot = out.mode == ReduceMode::kAll ? 0 : (g.by_column ? t : r);
#pragma unroll
      for (int q = 0; q < 9; ++q) {
        const int at = column_index(cell, q);
        double sum = double(acc[cell][q]);
        if constexpr (kFloatSums<T>) sum += double(mid[at]) + (top_used ? top[at] : 0.0);
        const int32_t count = count_totals[at];
        if (!reduced) {
          store_pair(out, flat, q, count, T(sum), keep);
        } else if (keep) {
          atomicAdd(&slots.counts[slot][q], static_cast<unsigned long long>(count));
          atomicAdd(&slots.sums[slot][q], sum);
        }
      }
    }
    if (!reduced) continue;
    __syncthreads();
    for (int q = threadIdx.x; q < kTile * 9; q += kThreads) {
      const int slot = q / 9, pair = q % 9;
      const unsigned long long c = slots.counts[slot][pair];
      const double v = slots.sums[slot][pair];
      if (c == 0 && v == 0.0) continue;
      const int64_t channel = out.mode == ReduceMode::kAll
                                  ? 0
                                  : (g.by_column ? s.columns[slot].channel : s.rows[slot].channel);
      device_output::atomic_add_count(static_cast<int64_t *>(out.counts) + channel * 9 + pair,
                                      int64_t(c));
      atomicAdd(static_cast<double *>(out.sums) + channel * 9 + pair, v);
    }
  }
}

// Blocks of one full wave on the current device (the persistent grid size).
template <typename T, typename Gather> int64_t resident_blocks() {
  int device = 0, sms = 0, per_sm = 0;
  cuda_check(cudaGetDevice(&device), "cudaGetDevice");
  cuda_check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
             "cudaDeviceGetAttribute");
  cuda_check(cudaFuncSetAttribute(tiled_classify_kernel<T, Gather>,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  int(shared_bytes<T>())),
             "cudaFuncSetAttribute (classify shared memory)");
  cuda_check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                 &per_sm, tiled_classify_kernel<T, Gather>, kThreads, shared_bytes<T>()),
             "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  return int64_t(std::max(sms, 1)) * std::max(per_sm, 1);
}

// Doubles of device scratch the kernel needs for this k (0 when the float levels suffice).
template <typename T, typename Gather> int64_t scratch_doubles(int64_t k) {
  if (!kFloatSums<T> || k <= int64_t(kTile) * kFlushSlices * kMidFlushes) return 0;
  return resident_blocks<T, Gather>() * kAccumulators * kThreads;
}

template <typename T, typename Gather>
void launch(const Gather &g, const ClassifyOutput &out, double *scratch, int64_t scratch_size,
            void *stream) {
  if (g.batches == 0 || g.n == 0 || g.m == 0) return;
  const int64_t tiles =
      g.batches * ((g.n + kTile - 1) / kTile) * ((g.m + kTile - 1) / kTile);
  int64_t blocks = std::min(tiles, resident_blocks<T, Gather>());
  if (scratch_doubles<T, Gather>(g.k) > 0) {
    blocks = std::min(blocks, scratch_size / (kAccumulators * kThreads));
    if (scratch == nullptr || blocks < 1)
      throw std::invalid_argument("nearzero: classify scratch buffer is missing or too small");
  }
  tiled_classify_kernel<T, Gather><<<unsigned(blocks), kThreads, shared_bytes<T>(),
                                     static_cast<cudaStream_t>(stream)>>>(g, out, scratch);
  cuda_check(cudaGetLastError(), "classify kernel launch");
}

}  // namespace tiled
}  // namespace nearzero
