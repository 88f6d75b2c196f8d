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
// Included by matmul_tiled_cuda.cu and conv_cuda.cu only.
#pragma once
#include "common/classify_rule.h"
#include "cuda/classify_output_cuda.cuh"
#include "cuda/cuda_check.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

namespace nearzero {
namespace tiled {

constexpr int kTile = 32;                          // rows, columns and k of one block tile
constexpr int kThreads = 256;                      // 16 x 16 threads
constexpr int kCells = 4;                          // 2 x 2 cells per thread
constexpr int kAccumulators = kCells * 9;
constexpr int kPad = 4;                            // plane row padding; keeps 8/16-byte loads aligned
constexpr int kLoads = kTile * kTile / kThreads;   // elements per thread per operand slice
constexpr int kFlushSlices = 4;                    // 128 products per register partial sum
constexpr int kMidFlushes = 16;                    // register flushes per float shared total

// Row, column and depth parts of addresses (in elements), cells and channels. `spatial` is what
// a convolution checks against the input bounds; matmul leaves it unused.
struct Row {
  int64_t x, cell, channel;
  int32_t spatial[3];
};
struct Column {
  int64_t y, cell, channel;
};
struct Depth {
  int64_t x, y;
  int32_t spatial[3];
};

template <typename T> struct Storage {
  T x_planes[3][kTile][kTile + kPad];  // [class][kk][row]
  T y_planes[3][kTile][kTile + kPad];  // [class][kk][column]
  uint8_t x_codes[kTile][kTile + 4];   // [row][kk] class codes, read back to build bit masks
  uint8_t y_codes[kTile][kTile + 4];   // [column][kk]
  uint32_t x_bits[3][kTile];           // [class][row]: bit kk set when x[row, kk] has the class
  uint32_t y_bits[3][kTile];           // [class][column]
  Row rows[kTile];
  Column columns[kTile];
  Depth depths[2][kTile];              // slice s reads [s % 2] while [(s + 1) % 2] is filled
};

// Block totals for reduce= (one slot per row or column of the tile); overlays x_planes once
// the last slice has been multiplied.
struct SlotTable {
  unsigned long long counts[kTile][9];
  double sums[kTile][9];
};
static_assert(sizeof(SlotTable) <= sizeof(Storage<float>::x_planes), "slot table overlay");

template <typename T> constexpr bool kFloatSums = sizeof(T) == 4;
template <typename T> constexpr int kMinBlocks = sizeof(T) == 4 ? 2 : 1;

// Per-thread columns after Storage: int32 count totals, then (float) float sum totals, both
// [cell * 9 + pair][thread].
template <typename T> constexpr size_t storage_bytes() {
  return (sizeof(Storage<T>) + 15) / 16 * 16;
}
template <typename T> constexpr size_t shared_bytes() {
  return storage_bytes<T>() + sizeof(int32_t) * kAccumulators * kThreads +
         (kFloatSums<T> ? sizeof(float) * kAccumulators * kThreads : 0);
}

// Absent elements (outside the tile's range, padding) load as NaN: no class, nothing added.
__device__ __forceinline__ float quiet_nan(float) { return __int_as_float(0x7fc00000); }
__device__ __forceinline__ double quiet_nan(double) {
  return __longlong_as_double(0x7ff8000000000000ll);
}

template <typename T> struct Pair2;
template <> struct Pair2<float> { using Type = float2; };
template <> struct Pair2<double> { using Type = double2; };

// Which element of a 32 x 32 slice a thread loads for load e. Lanes run along the operand's
// contiguous axis (the policy says which) so that global loads coalesce.
__device__ __forceinline__ void slice_position(int e, bool along_k, int &outer, int &kk) {
  const int linear = int(threadIdx.x) + kThreads * e;
  if (along_k) {
    kk = linear % kTile;
    outer = linear / kTile;
  } else {
    outer = linear % kTile;
    kk = linear / kTile;
  }
}

template <typename T, typename Gather>
__device__ __forceinline__ void load_slice(const Gather &g, const Storage<T> &s, int buffer,
                                           int rows_valid, int columns_valid, int depth_valid,
                                           T (&x_next)[kLoads], T (&y_next)[kLoads]) {
#pragma unroll
  for (int e = 0; e < kLoads; ++e) {
    int row, column, kx, ky;
    slice_position(e, g.x_along_k, row, kx);
    slice_position(e, g.y_along_k, column, ky);
    x_next[e] = (row < rows_valid && kx < depth_valid)
                    ? g.x_value(s.rows[row], s.depths[buffer][kx])
                    : quiet_nan(T(0));
    y_next[e] = (column < columns_valid && ky < depth_valid)
                    ? g.y_value(s.depths[buffer][ky], s.columns[column])
                    : quiet_nan(T(0));
  }
}

template <typename T, typename Gather>
__device__ __forceinline__ void store_slice(Storage<T> &s, const Gather &g,
                                            const T (&x_next)[kLoads], const T (&y_next)[kLoads]) {
#pragma unroll
  for (int e = 0; e < kLoads; ++e) {
    int row, column, kx, ky;
    slice_position(e, g.x_along_k, row, kx);
    slice_position(e, g.y_along_k, column, ky);
    const int cx = classify_value(x_next[e], g.x_threshold);
    const int cy = classify_value(y_next[e], g.y_threshold);
#pragma unroll
    for (int c = 0; c < 3; ++c) {
      s.x_planes[c][kx][row] = cx == c ? x_next[e] : T(0);
      s.y_planes[c][ky][column] = cy == c ? y_next[e] : T(0);
    }
    s.x_codes[row][kx] = uint8_t(cx);
    s.y_codes[column][ky] = uint8_t(cy);
  }
}

// Each warp turns 4 rows of x codes and 4 columns of y codes into 32-bit class masks over kk.
template <typename T> __device__ __forceinline__ void build_bits(Storage<T> &s) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int q = 0; q < kTile / (kThreads / 32); ++q) {
    const int r = warp + (kThreads / 32) * q;
    const int cx = s.x_codes[r][lane], cy = s.y_codes[r][lane];
#pragma unroll
    for (int c = 0; c < 3; ++c) {
      const uint32_t bx = __ballot_sync(0xffffffffu, cx == c);
      const uint32_t by = __ballot_sync(0xffffffffu, cy == c);
      if (lane == 0) {
        s.x_bits[c][r] = bx;
        s.y_bits[c][r] = by;
      }
    }
  }
}

// Adds one slice: sums into acc[cell][pair]; counts into byte `cell` of packed[pair].
template <typename T>
__device__ __forceinline__ void multiply_slice(const Storage<T> &s, int row0, int col0,
                                               T (&acc)[kCells][9], uint32_t (&packed)[9]) {
  using V2 = typename Pair2<T>::Type;
#pragma unroll 4
  for (int kk = 0; kk < kTile; ++kk) {
    T a[3][2], b[3][2];
#pragma unroll
    for (int c = 0; c < 3; ++c) {
      const V2 va = *reinterpret_cast<const V2 *>(&s.x_planes[c][kk][row0]);
      const V2 vb = *reinterpret_cast<const V2 *>(&s.y_planes[c][kk][col0]);
      a[c][0] = va.x;
      a[c][1] = va.y;
      b[c][0] = vb.x;
      b[c][1] = vb.y;
    }
#pragma unroll
    for (int cell = 0; cell < kCells; ++cell)
#pragma unroll
      for (int ca = 0; ca < 3; ++ca)
#pragma unroll
        for (int cb = 0; cb < 3; ++cb)
          acc[cell][ca * 3 + cb] += a[ca][cell / 2] * b[cb][cell % 2];
  }
#pragma unroll
  for (int cell = 0; cell < kCells; ++cell)
#pragma unroll
    for (int ca = 0; ca < 3; ++ca)
#pragma unroll
      for (int cb = 0; cb < 3; ++cb)
        packed[ca * 3 + cb] += uint32_t(__popc(s.x_bits[ca][row0 + cell / 2] &
                                               s.y_bits[cb][col0 + cell % 2]))
                               << (8 * cell);
}

__device__ __forceinline__ int column_index(int cell, int pair) {
  return (cell * 9 + pair) * kThreads + int(threadIdx.x);
}

// Moves the packed per-slice counts (at most 4 * 32 = 128 per byte) to int32 totals.
__device__ __forceinline__ void flush_counts(int32_t *count_totals, uint32_t (&packed)[9]) {
#pragma unroll
  for (int q = 0; q < 9; ++q) {
#pragma unroll
    for (int cell = 0; cell < kCells; ++cell)
      count_totals[column_index(cell, q)] += int32_t((packed[q] >> (8 * cell)) & 0xffu);
    packed[q] = 0;
  }
}

__device__ __forceinline__ void flush_sums(float *mid, float (&acc)[kCells][9]) {
#pragma unroll
  for (int cell = 0; cell < kCells; ++cell)
#pragma unroll
    for (int q = 0; q < 9; ++q) {
      mid[column_index(cell, q)] += acc[cell][q];
      acc[cell][q] = 0.0f;
    }
}

__device__ __forceinline__ void flush_mid(float *mid, double *top, bool first) {
#pragma unroll 4
  for (int q = 0; q < kAccumulators; ++q) {
    const int at = q * kThreads + int(threadIdx.x);
    top[at] = (first ? 0.0 : top[at]) + double(mid[at]);
    mid[at] = 0.0f;
  }
}

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
    tiled_classify_kernel(Gather g, DeviceOutput out, double *scratch) {
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
      const bool keep = device_output::cell_wanted(out, flat);
      const int slot = out.mode == ReduceMode::kAll ? 0 : (g.by_column ? t : r);
#pragma unroll
      for (int q = 0; q < 9; ++q) {
        const int at = column_index(cell, q);
        double sum = double(acc[cell][q]);
        if constexpr (kFloatSums<T>) sum += double(mid[at]) + (top_used ? top[at] : 0.0);
        const int32_t count = count_totals[at];
        if (!reduced) {
          const int64_t where = flat * out.cell_stride + q * out.pair_stride;
          if (out.counts_int64)
            static_cast<int64_t *>(out.counts)[where] = keep ? count : 0;
          else
            static_cast<int32_t *>(out.counts)[where] = keep ? count : 0;
          static_cast<T *>(out.sums)[where] = keep ? T(sum) : T(0);
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
void launch(const Gather &g, const DeviceOutput &out, double *scratch, int64_t scratch_size,
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
