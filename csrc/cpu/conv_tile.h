// The compute core shared by the three convolution kernels: an implicit GEMM over gathered
// operands. Each output cell (row r, column j) sums A(r, k) * B(k, j) over k. The row side A is
// grouped by class, so a product needs three multiply-adds (its class against B's P, Z and N
// slots) instead of nine; B is packed per k block into class-slotted panels; counts come from
// packed per-class count codes added in the same pass. Included by the conv_*_cpu.cpp files.
#pragma once
#include "cpu/aligned_vector.h"
#include "common/classify_rule.h"
#include "cpu/classify_output.h"

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace nearzero {
namespace conv_detail {

// k entries per panel block (at most kFlushEvery): 128 x 256 B = 32 KiB of float panel.
constexpr int64_t kBlockK = 128;
// A T partial sum takes at most this many products before it moves to double, which keeps each
// class sum within SPEC §4's 1e-5 relative bound however long the reduction is.
constexpr int32_t kFlushEvery = 128;
// Counts of one (class of A, class of B) pair travel as 10-bit fields of one int32 per lane:
// wide enough for kFlushEvery products between flushes.
constexpr int kCountBits = 10;
constexpr int32_t kCountMask = (1 << kCountBits) - 1;

template <typename T> constexpr int lanes() { return sizeof(T) == 4 ? 16 : 8; }

// Where a lane tile is one register (the AVX-512 level) a segment's loop is bound by its loads
// and multiply-add latency, and the derived counts and four accumulator sets of TileAccumulators
// pay off; with AVX2 registers (two per tile) they measured slower, so other levels keep the
// two-set loop that counts every product.
#if defined(__AVX512F__)
constexpr bool kWideRegisters = true;
#else
constexpr bool kWideRegisters = false;
#endif

// One k of a panel: the column block's B values in the slot of their class (zeros in the other
// two) and a count code per column (1 << (10 * class), 0 for no class).
template <typename T> struct PanelEntry {
  T values[3][lanes<T>()];
  int32_t codes[lanes<T>()];
};

// Flag beside the nonzero-slot bits of a panel: some panel value is +-inf.
constexpr int kPanelInfinite = 8;

// Rows refer to their panel entries by byte offset (index * sizeof(PanelEntry<T>)), so the
// inner loop addresses an entry with one add.
using PanelOffset = uint32_t;

template <typename T> inline PanelOffset panel_offset(int64_t index) {
  return PanelOffset(index * int64_t(sizeof(PanelEntry<T>)));
}

template <typename T>
inline const PanelEntry<T> &panel_entry(const PanelEntry<T> *panel, PanelOffset offset) {
  return *reinterpret_cast<const PanelEntry<T> *>(reinterpret_cast<const char *>(panel) + offset);
}

// Writes one B element into a zeroed panel entry.
template <typename T>
inline void put_panel_value(PanelEntry<T> &entry, int lane, T value, uint8_t code) {
  const int cls = code & 3;
  if (cls == kNoClass) return;
  entry.values[cls][lane] = value;
  entry.codes[lane] = int32_t(1) << (kCountBits * cls);
}

// One row's values of one k block as three per-class lists (what TileAccumulators reads).
template <typename T> struct RowView {
  const T *values[3];
  const PanelOffset *offsets[3];
  int32_t lengths[3];
  bool infinite;  // some value is +-inf: products take the exact path
};

// Sums and counts of a tile of cell blocks (one row x one column block of lanes<T>() columns).
// T partial sums and packed counts are the hot state; double totals and int64 counts are
// written by the first flush of each class (no zeroing pass over them).
template <typename T> class TileAccumulators {
public:
  static constexpr int W = lanes<T>();

  // Starts a tile of `blocks` cell blocks. Nothing large is cleared: a class's partial sums
  // count as zero until its first segment stores them, and its totals until its first flush.
  void reset(int64_t blocks) {
    partial_.resize(size_t(blocks) * 9 * W);
    packed_.resize(size_t(blocks) * 3 * W);
    pending_.assign(size_t(blocks) * 3, 0);
    state_.assign(size_t(blocks) * 3, 0);
    total_.resize(size_t(blocks) * 9 * W);
    count_.resize(size_t(blocks) * 9 * W);
  }

  // Adds one row's block (all three classes) against one panel block. Bit b of
  // `nonzero_slots` says the panel's class-b slots hold some nonzero value; products with an
  // all-zero slot, or with a near-zero row segment of exact zeros, are exactly zero and skipped
  // (post-ReLU activations have no N and their Z values are exactly 0). Where either side holds
  // inf every product is kept (inf * 0 is NaN): rows by the exact path, panels by the flag
  // kPanelInfinite in `nonzero_slots`.
  // `panel_codes`, if given, is the sum of the count codes of all `entries` panel entries. A row
  // that classifies every one of those entries then takes the counts of its longest class as
  // panel_codes minus the counts of its other two classes, so that class's products need no
  // count adds (a third to a half of the inner loop's loads).
  void add_row(int64_t block, const RowView<T> &row, const PanelEntry<T> *panel,
               int nonzero_slots = 7, const int32_t *panel_codes = nullptr,
               int32_t entries = 0) {
    int derived = -1;
    if (kWideRegisters && panel_codes != nullptr && !row.infinite &&
        row.lengths[0] + row.lengths[1] + row.lengths[2] == entries) {
      derived = row.lengths[1] > row.lengths[0] ? 1 : 0;
      if (row.lengths[2] > row.lengths[derived]) derived = 2;
    }
    int32_t counted[W] = {};  // codes of the counted classes' products
    for (int a = 0; a < 3; ++a) {
      if (row.lengths[a] == 0) continue;
      if (row.infinite) {
        add_exact(block, a, row.values[a], row.offsets[a], row.lengths[a], panel);
        continue;
      }
      const int slots = a == kNearZero && !(nonzero_slots & kPanelInfinite) &&
                                all_zero(row.values[a], row.lengths[a])
                            ? 0
                            : nonzero_slots & 7;
      if (a == derived)
        add_segment<false>(block, a, row.values[a], row.offsets[a], row.lengths[a], panel, slots,
                           counted);
      else
        add_segment<true>(block, a, row.values[a], row.offsets[a], row.lengths[a], panel, slots,
                          counted);
    }
    if (derived >= 0 && row.lengths[derived] > 0) {
      // Field by field no borrow: each field of panel_codes is at least the sum of the counted
      // fields. The segment left the class live; its fields stay far below kCountMask (at most
      // kFlushEvery since the last flush plus one block of kPanelBlockK entries).
      int32_t *packed = packed_.data() + (size_t(block) * 3 + derived) * W;
      for (int j = 0; j < W; ++j) packed[j] += panel_codes[j] - counted[j];
    }
  }

  // Moves every partial sum of a cell block into its totals; call before reading them.
  void finish(int64_t block) {
    for (int a = 0; a < 3; ++a) flush(block, a);
  }

  // Ends a cell block for read(): classes that were flushed before take their last partial
  // sums into the totals; the others stay where they are (no round trip through double).
  void close(int64_t block) {
    for (int a = 0; a < 3; ++a)
      if (state_[size_t(block) * 3 + a] & kFlushed) flush(block, a);
  }

  // Counts and sums of pair (a, b) of a closed cell block, all lanes.
  template <typename C, typename S>
  void read(int64_t block, int a, int b, C *counts, S *sums) const {
    const size_t slot = size_t(block) * 3 + a, at = (size_t(block) * 9 + 3 * a + b) * W;
    if (state_[slot] & kFlushed) {
      for (int j = 0; j < W; ++j) {
        counts[j] = C(count_[at + j]);
        sums[j] = S(total_[at + j]);
      }
    } else if (state_[slot] & kLive) {
      const int32_t *packed = packed_.data() + slot * W;
      for (int j = 0; j < W; ++j) {
        counts[j] = C((packed[j] >> (kCountBits * b)) & kCountMask);
        sums[j] = S(partial_[at + j]);
      }
    } else {
      for (int j = 0; j < W; ++j) {
        counts[j] = C(0);
        sums[j] = S(0);
      }
    }
  }

#if defined(__AVX512F__)
  // read() for float at the AVX-512 level: the 16 lanes' counts and sums of pair (a, b) of a
  // closed cell block in two registers, with no trip through memory.
  void read_vectors(int64_t block, int a, int b, __m512i &counts, __m512 &sums) const {
    static_assert(std::is_same_v<T, float>, "float tiles only");
    const size_t slot = size_t(block) * 3 + a, at = (size_t(block) * 9 + 3 * a + b) * W;
    if (state_[slot] & kFlushed) {
      const __m256i low = _mm512_cvtepi64_epi32(_mm512_load_si512(count_.data() + at));
      const __m256i high = _mm512_cvtepi64_epi32(_mm512_load_si512(count_.data() + at + 8));
      counts = _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
      const __m256 low_sums = _mm512_cvtpd_ps(_mm512_load_pd(total_.data() + at));
      const __m256 high_sums = _mm512_cvtpd_ps(_mm512_load_pd(total_.data() + at + 8));
      sums = _mm512_insertf32x8(_mm512_castps256_ps512(low_sums), high_sums, 1);
    } else if (state_[slot] & kLive) {
      counts = live_counts(slot, b);
      sums = _mm512_load_ps(partial_.data() + at);
    } else {
      counts = _mm512_setzero_si512();
      sums = _mm512_setzero_ps();
    }
  }

  // Adds pair (a, b) of a closed cell block (float) to 8-lane running totals, lanes j and
  // j + 8 to lane j: int64 counts and double sums, both 64-byte aligned.
  void add_lane_pairs(int64_t block, int a, int b, int64_t *counts, double *sums) const {
    static_assert(std::is_same_v<T, float>, "float tiles only");
    const size_t slot = size_t(block) * 3 + a, at = (size_t(block) * 9 + 3 * a + b) * W;
    __m512i c;
    __m512d s;
    if (state_[slot] & kFlushed) {
      c = _mm512_add_epi64(_mm512_load_si512(count_.data() + at),
                           _mm512_load_si512(count_.data() + at + 8));
      s = _mm512_add_pd(_mm512_load_pd(total_.data() + at), _mm512_load_pd(total_.data() + at + 8));
    } else if (state_[slot] & kLive) {
      const __m512i packed = live_counts(slot, b);
      c = _mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(packed)),
                           _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(packed, 1)));
      const __m512 partial = _mm512_load_ps(partial_.data() + at);
      s = _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(partial)),
                        _mm512_cvtps_pd(_mm256_castpd_ps(
                            _mm512_extractf64x4_pd(_mm512_castps_pd(partial), 1))));
    } else {
      return;
    }
    _mm512_store_si512(counts, _mm512_add_epi64(_mm512_load_si512(counts), c));
    _mm512_store_pd(sums, _mm512_add_pd(_mm512_load_pd(sums), s));
  }
#endif

  // Finished results, laid out [block][pair][lane] (see CellTotals).
  const double *totals() const { return total_.data(); }
  const int64_t *counts() const { return count_.data(); }

private:
  // A near-zero segment of exact zeros (post-ReLU data) has only zero products: counts only.
  static bool all_zero(const T *values, int32_t n) {
    int32_t nonzero = 0;
    for (int32_t t = 0; t < n; ++t) nonzero |= values[t] != T(0);
    return nonzero == 0;
  }

  // At most three multiply-adds per product: the row value against the P, Z, N slots that
  // `Slots` names (bit b = class b); counts of all three classes travel in one packed integer
  // add. One instance per slot set, so the accumulators stay in registers.
  // Without `Count` the products add no count codes (add_row derives them); with it their codes
  // are also added to `counted`.
  template <int Slots, bool Count>
  void add_segment_to(int64_t block, int a, const T *values, const PanelOffset *offsets,
                      int32_t n, const PanelEntry<T> *panel, int32_t *counted) {
    const size_t slot = size_t(block) * 3 + a;
    if (pending_[slot] + n > kFlushEvery) flush(block, a);
    T *partial = partial_.data() + (size_t(block) * 9 + 3 * a) * W;
    int32_t *packed = packed_.data() + slot * W;
    T acc[3][W];
    int32_t codes[W];
    const bool live = (state_[slot] & kLive) != 0;
    for (int b = 0; b < 3; ++b)
      for (int j = 0; j < W; ++j) acc[b][j] = live ? partial[b * W + j] : T(0);
    for (int j = 0; j < W; ++j) codes[j] = 0;
    int32_t t = 0;
    // With at most two slots there are registers for a second set of accumulators: two
    // products per step halve the multiply-add dependency chains.
    constexpr int kSlotCount = (Slots & 1) + ((Slots >> 1) & 1) + ((Slots >> 2) & 1);
    constexpr bool kTwoSets = kSlotCount <= 2;
    T acc2[3][W] = {};
    // With one slot, four sets: a segment without count adds is otherwise bound by the
    // multiply-add latency rather than by its loads.
    T acc3[3][W] = {}, acc4[3][W] = {};
    if (kWideRegisters && kSlotCount == 1) {
      for (; t + 3 < n; t += 4) {
        const T x = values[t], x2 = values[t + 1], x3 = values[t + 2], x4 = values[t + 3];
        const PanelEntry<T> &e = panel_entry(panel, offsets[t]);
        const PanelEntry<T> &e2 = panel_entry(panel, offsets[t + 1]);
        const PanelEntry<T> &e3 = panel_entry(panel, offsets[t + 2]);
        const PanelEntry<T> &e4 = panel_entry(panel, offsets[t + 3]);
        constexpr int b = (Slots & 1) ? 0 : (Slots & 2) ? 1 : 2;
#pragma omp simd
        for (int j = 0; j < W; ++j) acc[b][j] += x * e.values[b][j];
#pragma omp simd
        for (int j = 0; j < W; ++j) acc2[b][j] += x2 * e2.values[b][j];
#pragma omp simd
        for (int j = 0; j < W; ++j) acc3[b][j] += x3 * e3.values[b][j];
#pragma omp simd
        for (int j = 0; j < W; ++j) acc4[b][j] += x4 * e4.values[b][j];
        if (Count) {
#pragma omp simd
          for (int j = 0; j < W; ++j)
            codes[j] += (e.codes[j] + e2.codes[j]) + (e3.codes[j] + e4.codes[j]);
        }
      }
    }
    if (kTwoSets) {
      for (; t + 1 < n; t += 2) {
        const T x = values[t], x2 = values[t + 1];
        const PanelEntry<T> &e = panel_entry(panel, offsets[t]);
        const PanelEntry<T> &e2 = panel_entry(panel, offsets[t + 1]);
#pragma GCC unroll 3
        for (int b = 0; b < 3; ++b) {
          if (!((Slots >> b) & 1)) continue;
#pragma omp simd
          for (int j = 0; j < W; ++j) acc[b][j] += x * e.values[b][j];
#pragma omp simd
          for (int j = 0; j < W; ++j) acc2[b][j] += x2 * e2.values[b][j];
        }
        if (Count) {
#pragma omp simd
          for (int j = 0; j < W; ++j) codes[j] += e.codes[j] + e2.codes[j];
        }
      }
    }
    for (; t < n; ++t) {
      const T x = values[t];
      const PanelEntry<T> &e = panel_entry(panel, offsets[t]);
#pragma GCC unroll 3
      for (int b = 0; b < 3; ++b) {
        if (!((Slots >> b) & 1)) continue;
#pragma omp simd
        for (int j = 0; j < W; ++j) acc[b][j] += x * e.values[b][j];
      }
      if (Count) {
#pragma omp simd
        for (int j = 0; j < W; ++j) codes[j] += e.codes[j];
      }
    }
    for (int b = 0; b < 3; ++b)
      for (int j = 0; j < W; ++j)
        partial[b * W + j] = kWideRegisters && kSlotCount == 1
                                 ? (acc[b][j] + acc2[b][j]) + (acc3[b][j] + acc4[b][j])
                                 : acc[b][j] + acc2[b][j];
    if (Count) {
      for (int j = 0; j < W; ++j) packed[j] = (live ? packed[j] : 0) + codes[j];
      for (int j = 0; j < W; ++j) counted[j] += codes[j];
    } else if (!live) {
      for (int j = 0; j < W; ++j) packed[j] = 0;
    }
    pending_[slot] += n;
    state_[slot] |= kLive;
  }

#if defined(__AVX512F__)
  // The 16 lanes' counts of pair (class of `slot`, b) in a live class's packed counts.
  __m512i live_counts(size_t slot, int b) const {
    return _mm512_and_si512(
        _mm512_srli_epi32(_mm512_load_si512(packed_.data() + slot * W), unsigned(kCountBits * b)),
        _mm512_set1_epi32(kCountMask));
  }

  // add_segment_to for float at the AVX-512 level, written with intrinsics: a cell block is one
  // register per slot, and every accumulator set stays in registers for the whole segment (the
  // generic loop kept them in stack arrays, whose reloads stalled at each segment's start).
  // The same sets as the generic loop: four with one slot, two with two, one with three.
  template <int Slots, bool Count>
  void add_segment_avx512(int64_t block, int a, const float *values, const PanelOffset *offsets,
                          int32_t n, const PanelEntry<float> *panel, int32_t *counted) {
    static_assert(std::is_same_v<T, float> && W == 16, "float tiles of 16 lanes only");
    constexpr int kSlotCount = (Slots & 1) + ((Slots >> 1) & 1) + ((Slots >> 2) & 1);
    constexpr int kSets = kSlotCount <= 1 ? 4 : kSlotCount == 2 ? 2 : 1;
    const size_t slot = size_t(block) * 3 + a;
    if (pending_[slot] + n > kFlushEvery) flush(block, a);
    float *partial = partial_.data() + (size_t(block) * 9 + 3 * a) * W;
    int32_t *packed = packed_.data() + slot * W;
    const bool live = (state_[slot] & kLive) != 0;
    const char *base = reinterpret_cast<const char *>(panel);
    constexpr size_t kCodes = offsetof(PanelEntry<float>, codes);
    __m512 acc[kSets][3];
    for (int s = 0; s < kSets; ++s)
      for (int b = 0; b < 3; ++b)
        acc[s][b] = s == 0 && live && ((Slots >> b) & 1) ? _mm512_load_ps(partial + b * W)
                                                          : _mm512_setzero_ps();
    __m512i codes = _mm512_setzero_si512();
    // One product: the row value against the slots of one panel entry, and its count codes.
    auto product = [&](int s, int32_t t) {
      const char *e = base + offsets[t];
      const __m512 x = _mm512_set1_ps(values[t]);
      for (int b = 0; b < 3; ++b)
        if ((Slots >> b) & 1)
          acc[s][b] = _mm512_fmadd_ps(
              x, _mm512_loadu_ps(reinterpret_cast<const float *>(e + b * W * sizeof(float))),
              acc[s][b]);
      if (Count)
        codes = _mm512_add_epi32(
            codes, _mm512_loadu_si512(reinterpret_cast<const void *>(e + kCodes)));
    };
    int32_t t = 0;
    for (; t + kSets <= n; t += kSets)
      for (int s = 0; s < kSets; ++s) product(s, t + s);
    for (; t < n; ++t) product(0, t);
    for (int b = 0; b < 3; ++b) {
      if ((Slots >> b) & 1) {
        __m512 sum = acc[0][b];
        for (int s = 1; s < kSets; ++s) sum = _mm512_add_ps(sum, acc[s][b]);
        _mm512_store_ps(partial + b * W, sum);
      } else if (!live) {
        _mm512_store_ps(partial + b * W, _mm512_setzero_ps());
      }
    }
    if (Count) {
      const __m512i before = live ? _mm512_load_si512(packed) : _mm512_setzero_si512();
      _mm512_store_si512(packed, _mm512_add_epi32(before, codes));
      _mm512_storeu_si512(counted, _mm512_add_epi32(_mm512_loadu_si512(counted), codes));
    } else if (!live) {
      _mm512_store_si512(packed, _mm512_setzero_si512());
    }
    pending_[slot] += n;
    state_[slot] |= kLive;
  }
#endif

  // One segment of add_row with the slot set `slots` (bits of nonzero panel slots).
  template <int Slots, bool Count>
  void add_segment_with(int64_t block, int a, const T *values, const PanelOffset *offsets,
                        int32_t n, const PanelEntry<T> *panel, int32_t *counted) {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>)
      return add_segment_avx512<Slots, Count>(block, a, values, offsets, n, panel, counted);
#endif
    add_segment_to<Slots, Count>(block, a, values, offsets, n, panel, counted);
  }

  template <bool Count>
  void add_segment(int64_t block, int a, const T *values, const PanelOffset *offsets, int32_t n,
                   const PanelEntry<T> *panel, int slots, int32_t *counted) {
    for (; n > kFlushEvery; n -= kFlushEvery) {  // blocks longer than one flush interval
      add_segment<Count>(block, a, values, offsets, kFlushEvery, panel, slots, counted);
      values += kFlushEvery;
      offsets += kFlushEvery;
    }
    switch (slots) {
    case 0: return add_segment_with<0, Count>(block, a, values, offsets, n, panel, counted);
    case 1: return add_segment_with<1, Count>(block, a, values, offsets, n, panel, counted);
    case 2: return add_segment_with<2, Count>(block, a, values, offsets, n, panel, counted);
    case 3: return add_segment_with<3, Count>(block, a, values, offsets, n, panel, counted);
    case 4: return add_segment_with<4, Count>(block, a, values, offsets, n, panel, counted);
    case 5: return add_segment_with<5, Count>(block, a, values, offsets, n, panel, counted);
    case 6: return add_segment_with<6, Count>(block, a, values, offsets, n, panel, counted);
    default: return add_segment_with<7, Count>(block, a, values, offsets, n, panel, counted);
    }
  }

  // Rows holding +-inf: each product goes straight to its own pair in double, so inf never
  // meets the zero slots of other classes (inf * 0 would be NaN).
  void add_exact(int64_t block, int a, const T *values, const PanelOffset *offsets, int32_t n,
                 const PanelEntry<T> *panel) {
    flush(block, a);
    for (int32_t t = 0; t < n; ++t) {
      const PanelEntry<T> &e = panel_entry(panel, offsets[t]);
      for (int j = 0; j < W; ++j) {
        if (e.codes[j] == 0) continue;
        const int b = e.codes[j] == 1 ? kPositive : (e.codes[j] >> kCountBits) == 1 ? kNearZero
                                                                                     : kNegative;
        const size_t at = (size_t(block) * 9 + class_pair_index(a, b)) * W + j;
        total_[at] += double(values[t]) * double(e.values[b][j]);
        count_[at] += 1;
      }
    }
  }

  // Moves a class's partial sums and packed counts into its double totals and int64 counts.
  void flush(int64_t block, int a) {
    const size_t slot = size_t(block) * 3 + a;
    const T *partial = partial_.data() + (size_t(block) * 9 + 3 * a) * W;
    const int32_t *packed = packed_.data() + slot * W;
    double *total = total_.data() + (size_t(block) * 9 + 3 * a) * W;
    int64_t *count = count_.data() + (size_t(block) * 9 + 3 * a) * W;
    const bool live = (state_[slot] & kLive) != 0, first = (state_[slot] & kFlushed) == 0;
    for (int b = 0; b < 3; ++b)
      for (int j = 0; j < W; ++j) {
        const double s = live ? double(partial[b * W + j]) : 0.0;
        const int64_t c = live ? (packed[j] >> (kCountBits * b)) & kCountMask : 0;
        total[b * W + j] = first ? s : total[b * W + j] + s;
        count[b * W + j] = first ? c : count[b * W + j] + c;
      }
    pending_[slot] = 0;
    state_[slot] = kFlushed;
  }

  static constexpr uint8_t kLive = 1;     // partial_/packed_ hold this class's running sums
  static constexpr uint8_t kFlushed = 2;  // total_/count_ hold this class's results
  AlignedVector<T> partial_;
  AlignedVector<int32_t> packed_;
  std::vector<int32_t> pending_;
  std::vector<uint8_t> state_;
  AlignedVector<double> total_;  // whole lines: flush moves 64-byte vectors
  AlignedVector<int64_t> count_;
};

}  // namespace conv_detail
}  // namespace nearzero
