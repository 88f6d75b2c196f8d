// Building blocks of the tiled classify kernel (tiled_classify_cuda.cuh): tile geometry, the
// shared-memory layout with its index tables, and the per-slice steps: load (through the gather
// policy), classify and stage as masked planes and codes, build class bit masks, multiply and
// count, and the flushes of partial sums and counts. Included by tiled_classify_cuda.cuh, and by
// exact_classify_cuda.cuh for the Row, Column and Depth policy types.
#pragma once
#include "common/classify_rule.h"

#include <cstdint>

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

// What a gather policy holds besides its addressing (row, column, depth and x_value): the
// operands and their thresholds, the GEMM shape (`batches` products of n x k by k x m), whether
// a reduction's slot is the column's channel (else the row's), and for each operand whether
// its contiguous axis runs along k, so that a slice's loads coalesce.
template <typename T> struct Operands {
  const T *x, *y;
  T x_threshold, y_threshold;
  int64_t batches, n, k, m;
  bool by_column, x_along_k, y_along_k;

  __device__ T y_value(const Depth &d, const Column &c) const { return y[d.y + c.y]; }
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

}  // namespace tiled
}  // namespace nearzero
