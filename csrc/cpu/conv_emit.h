// Emission of finished convolution cell blocks into a ClassifyOutput. Reductions go cell by cell
// through CellWriter; the full result is written in runs, one pair plane at a time, which keeps
// each plane's stores sequential (per-cell emission interleaves eighteen streams and measured
// several times slower on the forward benchmark). Included by the conv_*_cpu.cpp kernels.
#pragma once
#include "cpu/aligned_vector.h"
#include "cpu/classify_output.h"
#include "cpu/conv_tile.h"

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace nearzero {
namespace conv_detail {

// Per-cell results of finished cell blocks, [block][pair][lane] like TileAccumulators: where
// the filter gradient adds up partial results of tasks that split the reduction.
struct CellTotals {
  std::vector<double> total;
  std::vector<int64_t> count;
};

// Copies a run of `bytes` (a multiple of 32) from 64-byte aligned `src` into the result. Where
// the destination is aligned the stores bypass the cache: the result is written once and not
// read back, and ordinary stores would first read every line of the (often hundreds of MB)
// result. A whole line per store where the level has 64-byte registers.
inline void store_run(void *dst, const void *src, size_t bytes) {
#if defined(__AVX512F__)
  if ((reinterpret_cast<uintptr_t>(dst) & 63) == 0 && bytes % 64 == 0) {
    for (size_t i = 0; i < bytes; i += 64)
      _mm512_stream_si512(reinterpret_cast<__m512i *>(static_cast<char *>(dst) + i),
                          _mm512_load_si512(static_cast<const char *>(src) + i));
    return;
  }
#endif
#if defined(__AVX__)
  if ((reinterpret_cast<uintptr_t>(dst) & 31) == 0) {
    for (size_t i = 0; i < bytes; i += 32)
      _mm256_stream_si256(reinterpret_cast<__m256i *>(static_cast<char *>(dst) + i),
                          _mm256_load_si256(reinterpret_cast<const __m256i *>(
                              static_cast<const char *>(src) + i)));
    return;
  }
#endif
  std::memcpy(dst, src, bytes);
}

// Makes streamed stores visible to other threads; call once per thread before it finishes.
inline void finish_stores() {
#if defined(__AVX__)
  _mm_sfence();
#endif
}

// Per-row totals of the tiles of one task, for a reduction without a mask (the float tiles of
// the AVX-512 level): every cell of a row has the row's output channel, so all of them go to one
// reduction slot; a row's lanes are added up across tiles (as vectors) and reach the writer
// once per task rather than as a horizontal sum per tile.
struct RowTotals {
  static constexpr int kLanes = 8;  // a row's 16 lanes, two by two
  AlignedVector<int64_t> counts;    // [row][pair][lane]
  AlignedVector<double> sums;
  std::vector<int64_t> cells;       // some cell of each row; -1 while no tile added to it

  void reset(int64_t rows) {
    counts.assign(size_t(rows) * 9 * kLanes, 0);
    sums.assign(size_t(rows) * 9 * kLanes, 0.0);
    cells.assign(size_t(rows), -1);
  }

  int64_t *row_counts(int64_t r, int p) { return counts.data() + (size_t(r) * 9 + p) * kLanes; }
  double *row_sums(int64_t r, int p) { return sums.data() + (size_t(r) * 9 + p) * kLanes; }

  // Emits each row that took a tile as one cell, and forgets them.
  template <typename S> void emit_into(CellWriter<S> &writer) {
    for (size_t r = 0; r < cells.size(); ++r) {
      if (cells[r] < 0) continue;
      int64_t row_counts_[9];
      double row_sums_[9];
      for (int p = 0; p < 9; ++p) {
        row_counts_[p] = 0;
        row_sums_[p] = 0.0;
        for (int j = 0; j < kLanes; ++j) {
          row_counts_[p] += row_counts(int64_t(r), p)[j];
          row_sums_[p] += row_sums(int64_t(r), p)[j];
        }
      }
      writer.emit(cells[r], row_counts_, row_sums_);
      cells[r] = -1;
    }
  }
};

// Pair index of the accumulators (row class first) for output pair `pair` (first operand's
// class first): the same, or transposed when the rows hold the second operand.
inline int accumulated_pair(int pair, bool rows_hold_second) {
  return rows_hold_second ? 3 * (pair % 3) + pair / 3 : pair;
}

// Emits lane `lane` of finished cell block `block` ([block][pair][lane] arrays) as `cell`.
template <typename S>
inline void emit_cell(CellWriter<S> &writer, const double *total, const int64_t *count,
                      int lanes_per_block, int64_t block, int lane, int64_t cell,
                      bool rows_hold_second = false) {
  int64_t counts[9];
  double sums[9];
  const size_t base = size_t(block) * 9 * size_t(lanes_per_block) + size_t(lane);
  for (int p = 0; p < 9; ++p) {
    const size_t at = base + size_t(accumulated_pair(p, rows_hold_second)) * lanes_per_block;
    counts[p] = count[at];
    sums[p] = total[at];
  }
  writer.emit(cell, counts, sums);
}

// True when the tile's full result is written as plane runs (channels_first, every lane of
// the tile adjacent, int32 counts, no mask): then each row can be written as soon as it is
// closed (emit_row_runs), between the multiply-adds of the next rows, so the streamed stores
// drain while the kernel computes instead of in one burst per tile.
inline bool writes_row_runs(const ClassifyOutput &out, int lanes, int lanes_per_block,
                            const int64_t *lane_cells, int64_t row_step) {
  bool adjacent = out.mode == ReduceMode::kNone && out.cell_stride == 1 &&
                  out.mask == nullptr && !out.counts_int64 && lanes == lanes_per_block &&
                  row_step != 1;
  for (int l = 1; l < lanes; ++l) adjacent = adjacent && lane_cells[l] == lane_cells[0] + l;
  return adjacent;
}

// Writes closed row `r` of `acc` (cells first_cell + r * row_step + lane) as one run per pair
// plane; only where writes_row_runs holds.
template <typename T, typename S>
void emit_row_runs(const ClassifyOutput &out, const TileAccumulators<T> &acc, int64_t r,
                   int64_t first_cell, int64_t row_step, bool rows_hold_second) {
  constexpr int W = TileAccumulators<T>::W;
  int32_t *counts = static_cast<int32_t *>(out.counts);
  S *sums = static_cast<S *>(out.sums);
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float> && std::is_same_v<S, float>) {
    const int64_t at = first_cell + r * row_step;
    const bool aligned = ((reinterpret_cast<uintptr_t>(counts + at) |
                           reinterpret_cast<uintptr_t>(sums + at)) & 63) == 0 &&
                         out.pair_stride % 16 == 0;
    if (aligned) {  // each run straight from registers to memory
      for (int p = 0; p < 9; ++p) {
        const int q = accumulated_pair(p, rows_hold_second);
        __m512i run_counts;
        __m512 run_sums;
        acc.read_vectors(r, q / 3, q % 3, run_counts, run_sums);
        _mm512_stream_si512(reinterpret_cast<__m512i *>(counts + at + p * out.pair_stride),
                            run_counts);
        _mm512_stream_ps(sums + at + p * out.pair_stride, run_sums);
      }
      return;
    }
  }
#endif
  alignas(64) int32_t run_counts[16];
  alignas(64) S run_sums[16];
  for (int p = 0; p < 9; ++p) {
    const int q = accumulated_pair(p, rows_hold_second);
    acc.read(r, q / 3, q % 3, run_counts, run_sums);
    const int64_t at = first_cell + r * row_step + p * out.pair_stride;
    store_run(counts + at, run_counts, W * sizeof(int32_t));
    store_run(sums + at, run_sums, W * sizeof(S));
  }
}

// Emits a tile of `rows` x `lanes` cells closed in `acc`: block r holds row r; cell (r, l) is
// lane_cells[l] + r * row_step, and all cells of a row share one output channel. The full
// result is written here with CellWriter's semantics (masked-out cells as zeros) in the order
// that keeps stores sequential. For reductions the wanted cells of a row are added up first and
// reach the writer as one cell of that channel (a reduction only sums cells, so the result is
// the same and the writer's per-cell work shrinks by the lane count). `scratch` is reused.
template <typename T, typename S>
void emit_tile(CellWriter<S> &writer, const ClassifyOutput &out, const TileAccumulators<T> &acc,
               int64_t rows, int lanes, const int64_t *lane_cells, int64_t row_step,
               bool rows_hold_second, CellTotals &scratch) {
  constexpr int W = TileAccumulators<T>::W;
  if (lanes == 0) return;
  auto classes = [&](int p, int &a, int &b) {
    const int q = accumulated_pair(p, rows_hold_second);
    a = q / 3;
    b = q % 3;
  };
  S *sums = static_cast<S *>(out.sums);
  if (writes_row_runs(out, lanes, W, lane_cells, row_step)) {
    for (int64_t r = 0; r < rows; ++r)
      emit_row_runs<T, S>(out, acc, r, lane_cells[0], row_step, rows_hold_second);
    return;
  }
  if (out.mode != ReduceMode::kNone && out.mask == nullptr) {  // every lane: add them up
    for (int64_t r = 0; r < rows; ++r) {
      int64_t counts[9];
      double row_sums[9];
      for (int p = 0; p < 9; ++p) {
        int a, b;
        classes(p, a, b);
        int64_t c[16];
        double t[16];
        acc.read(r, a, b, c, t);
        counts[p] = 0;
        row_sums[p] = 0.0;
        for (int l = 0; l < lanes; ++l) {
          counts[p] += c[l];
          row_sums[p] += t[l];
        }
      }
      writer.emit(lane_cells[0] + r * row_step, counts, row_sums);
    }
    return;
  }
  // Everything else reads the tile once into [row][pair][lane] in output pair order.
  scratch.count.resize(size_t(rows) * 9 * W);
  scratch.total.resize(size_t(rows) * 9 * W);
  for (int64_t r = 0; r < rows; ++r)
    for (int p = 0; p < 9; ++p) {
      int a, b;
      classes(p, a, b);
      const size_t at = (size_t(r) * 9 + size_t(p)) * W;
      acc.read(r, a, b, scratch.count.data() + at, scratch.total.data() + at);
    }
  const int64_t *count = scratch.count.data();
  const double *total = scratch.total.data();
  auto from = [&](int64_t r, int p) { return (size_t(r) * 9 + size_t(p)) * size_t(W); };
  if (out.mode != ReduceMode::kNone) {
    for (int64_t r = 0; r < rows; ++r) {
      int64_t counts[9] = {};
      double row_sums[9] = {};
      int64_t wanted_cell = -1;
      for (int l = 0; l < lanes; ++l) {
        const int64_t cell = lane_cells[l] + r * row_step;
        if (!writer.wanted(cell)) continue;
        wanted_cell = cell;
        for (int p = 0; p < 9; ++p) {
          counts[p] += count[from(r, p) + size_t(l)];
          row_sums[p] += total[from(r, p) + size_t(l)];
        }
      }
      if (wanted_cell >= 0) writer.emit(wanted_cell, counts, row_sums);
    }
    return;
  }
  auto store = [&](int64_t cell, int p, int64_t r, int l) {
    const bool keep = out.mask == nullptr || out.mask[cell] != 0;
    const int64_t at = cell * out.cell_stride + p * out.pair_stride;
    const int64_t c = keep ? count[from(r, p) + size_t(l)] : 0;
    if (out.counts_int64)
      static_cast<int64_t *>(out.counts)[at] = c;
    else
      static_cast<int32_t *>(out.counts)[at] = int32_t(c);
    sums[at] = keep ? S(total[from(r, p) + size_t(l)]) : S(0);
  };
  if (row_step == 1) {  // rows are adjacent cells (channels_last channels)
    for (int l = 0; l < lanes; ++l)
      for (int p = 0; p < 9; ++p)
        for (int64_t r = 0; r < rows; ++r) store(lane_cells[l] + r, p, r, l);
  } else {
    for (int64_t r = 0; r < rows; ++r)
      for (int p = 0; p < 9; ++p)
        for (int l = 0; l < lanes; ++l) store(lane_cells[l] + r * row_step, p, r, l);
  }
}

}  // namespace conv_detail
}  // namespace nearzero
