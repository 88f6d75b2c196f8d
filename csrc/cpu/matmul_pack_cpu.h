// Packing for the fused matmul kernel: rows of x grouped by (k block, class), panels of y split
// into per-class slots, and class bit masks over k for counts. Included by matmul_cpu.cpp only.
#pragma once
#include "cpu/aligned_vector.h"
#include "common/classify_rule.h"
#include "cpu/matmul_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace nearzero {
namespace matmul_detail {

constexpr int64_t kBlockK = 64;  // k per value panel slice: 64 x 3 x 32 floats = 24 KiB, in L1
template <typename T> constexpr int column_block() { return sizeof(T) == 4 ? 32 : 16; }

// The popcnt instruction where the target has it; otherwise the bit-parallel sum, inline (the
// builtin would call a library function per word).
inline int popcount64(uint64_t v) {
#if defined(__POPCNT__)
  return __builtin_popcountll(v);
#else
  v -= (v >> 1) & 0x5555555555555555ULL;
  v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);
  v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
  return int((v * 0x0101010101010101ULL) >> 56);
#endif
}

// Where AVX-512 is on, column panels carry class lane masks (see ColumnPanel) and rows are read
// class by class; below it each class of y has a value slot of its own.
#if defined(__AVX512F__)
constexpr bool kMaskedPanel = true;
constexpr int kValueSlots = 1;
#else
constexpr bool kMaskedPanel = false;
constexpr int kValueSlots = 3;
#endif

// One row of x over one k chunk, its values grouped by class and k block. With a masked panel
// (AVX-512) class-major: the values of one class are one run over the whole chunk, read in one
// go. Otherwise block-major: the rows of a pass are read block by block, and the runs of one
// block lie together for the prefetcher (class-major measured 40% slower there).
template <typename T> struct PackedRow {
  std::vector<T> values;
  std::vector<uint16_t> offsets;   // k - (k chunk start) of each value
  std::vector<int64_t> bounds;     // first value of each (class, k block) run, and the end
  std::vector<uint64_t> bits;      // [class][word] over the whole of k
  int64_t words;
  int64_t class_totals[3];
  bool complete;                   // no NaN: derived counts are exact
  bool finite;                     // no inf: 0 * inf cannot leak into other classes' sums
  bool zero_near;                  // every near-zero value is an exact zero (post-ReLU rows)

  // Values [start(c, w), stop(c, w)) are class c's in k block w.
  static int64_t run(int c, int64_t w, int64_t words) {
    return kMaskedPanel ? c * (words + 1) + w : w * 3 + c;
  }
  int64_t start(int c, int64_t w) const { return bounds[size_t(run(c, w, words))]; }
  int64_t stop(int c, int64_t w) const { return bounds[size_t(run(c, w, words) + 1)]; }
};

// Class bit masks of up to 64 values (bit i: value i), whether every value has a class (no NaN),
// whether some near-zero value is nonzero (P and N values never are) and whether some value is
// +-inf. The classes go through a byte array so that both loops vectorise.
struct WordMasks {
  uint64_t cls[3] = {0, 0, 0};
  bool complete = true;
  bool near_nonzero = false;
  bool infinite = false;
};

// Bit i of the result: codes[i] == code, over 64 codes.
inline uint64_t code_mask(const uint8_t *codes, uint8_t code) {
#if defined(__AVX512BW__)
  return _mm512_cmpeq_epi8_mask(_mm512_loadu_si512(codes), _mm512_set1_epi8(char(code)));
#elif defined(__AVX2__)
  const __m256i want = _mm256_set1_epi8(char(code));
  const __m256i low = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(codes));
  const __m256i high = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(codes + 32));
  const uint32_t lo = uint32_t(_mm256_movemask_epi8(_mm256_cmpeq_epi8(low, want)));
  const uint32_t hi = uint32_t(_mm256_movemask_epi8(_mm256_cmpeq_epi8(high, want)));
  return uint64_t(lo) | (uint64_t(hi) << 32);
#else
  uint64_t mask = 0;
  for (int i = 0; i < 64; ++i) mask |= uint64_t(codes[i] == code) << i;
  return mask;
#endif
}

template <typename T>
inline WordMasks classify_word(const T *first, int64_t stride, int n, T threshold) {
  alignas(32) uint8_t codes[64];
  int near_nonzero = 0, infinite = 0;
  for (int i = 0; i < n; ++i) {
    const T v = first[i * stride];
    const int c = classify_value(v, threshold);
    codes[i] = uint8_t(c);
    near_nonzero |= (c == kNearZero) & (v != T(0));
    infinite |= (v == std::numeric_limits<T>::infinity()) |
                (v == -std::numeric_limits<T>::infinity());
  }
  for (int i = n; i < 64; ++i) codes[i] = uint8_t(kNoClass);
  WordMasks m;
  for (int c = 0; c < 3; ++c) m.cls[c] = code_mask(codes, uint8_t(c));
  const uint64_t all = n == 64 ? ~uint64_t(0) : (uint64_t(1) << n) - 1;
  m.complete = (m.cls[0] | m.cls[1] | m.cls[2]) == all;
  m.near_nonzero = near_nonzero != 0;
  m.infinite = infinite != 0;
  return m;
}

// One k block is one 64-bit word of the class masks.
static_assert(kBlockK == 64, "k blocks and bit-mask words must coincide");

template <typename T>
void pack_row(const MatmulProblem<T> &p, const T *x_row, int64_t words, PackedRow<T> &row) {
  row.words = words;
  row.bits.resize(size_t(3) * words);
  row.bounds.resize(size_t(3) * (words + 1));
  row.values.resize(size_t(p.k));
  row.offsets.resize(size_t(p.k));
  row.complete = row.finite = row.zero_near = true;
  row.class_totals[0] = row.class_totals[1] = row.class_totals[2] = 0;
  for (int64_t w = 0; w < words; ++w) {
    const int n = int(std::min<int64_t>(kBlockK, p.k - w * kBlockK));
    const WordMasks m = classify_word(x_row + w * kBlockK * p.x_col_stride, p.x_col_stride, n,
                                      p.x_threshold);
    row.complete = row.complete && m.complete;
    row.finite = row.finite && !m.infinite;
    row.zero_near = row.zero_near && !m.near_nonzero;
    for (int c = 0; c < 3; ++c) {
      row.bits[size_t(c) * words + w] = m.cls[c];
      row.class_totals[c] += popcount64(m.cls[c]);
    }
  }
  int64_t at = 0;
  auto place = [&](int c, int64_t w) {  // the run of (c, w), at `at`
    row.bounds[size_t(PackedRow<T>::run(c, w, words))] = at;
    const T *block = x_row + w * kBlockK * p.x_col_stride;
    for (uint64_t rest = row.bits[size_t(c) * words + w]; rest != 0; rest &= rest - 1) {
      const int i = __builtin_ctzll(rest);
      row.values[size_t(at)] = block[i * p.x_col_stride];
      row.offsets[size_t(at)] = uint16_t(w * kBlockK + i);
      ++at;
    }
  };
  if (kMaskedPanel) {
    for (int c = 0; c < 3; ++c) {
      for (int64_t w = 0; w < words; ++w) place(c, w);
      row.bounds[size_t(PackedRow<T>::run(c, words, words))] = at;
    }
  } else {
    for (int64_t w = 0; w < words; ++w)
      for (int c = 0; c < 3; ++c) place(c, w);
    row.bounds[size_t(3 * words)] = at;
  }
}

// Columns per 512-bit vector, and the vectors of a column block.
template <typename T> constexpr int mask_lanes() { return int(64 / sizeof(T)); }
template <typename T> constexpr int mask_vectors() { return column_block<T>() / mask_lanes<T>(); }
static_assert(column_block<float>() <= 32 && column_block<double>() <= 32, "one 32-bit mask");
constexpr uint8_t kSlotInfinite = 8;

// One block of B columns of y over the whole of a k chunk. Where AVX-512 is on, the values are
// kept as they are, [k][column], with a lane mask per k and class (one bit per column): the
// row kernel takes them with masked multiply-adds, so one load of y serves all three classes.
// Without mask registers (AVX2 and below) each class has a slot of its own, [k][class][column],
// with the other classes' entries zero, read in L1-sized slices of kBlockK rows.
template <typename T> struct ColumnPanel {
  AlignedVector<T> values;      // [k][slot][column], 32-byte loads
  AlignedVector<uint32_t> masks;  // kMaskedPanel: [k][class], bit j = column j
  std::vector<uint8_t> live;    // [k block]: bit b when class b's slot holds a nonzero value,
                                // kSlotInfinite when some value is +-inf
  std::vector<uint64_t> bits;   // [class][word][column]
  std::vector<int64_t> totals;  // [column][class]
  bool complete;                // no NaN in any column: derived counts are exact
  bool present[3];              // some column holds class b
};

// One k of a masked panel: the columns' values as they are and their class lane masks, from
// the class codes of the row (the row is read along the columns, as y lies in memory).
template <typename T>
void pack_masked_row(const MatmulProblem<T> &p, const T *row, int jn, int64_t k,
                     ColumnPanel<T> &panel) {
  constexpr int B = column_block<T>();
  T *values = panel.values.data() + k * B;
  alignas(64) uint8_t codes[64];
  for (int j = 0; j < jn; ++j) {
    const T v = row[j * p.y_col_stride];
    values[j] = v;
    codes[j] = uint8_t(classify_value(v, p.y_threshold));
  }
  for (int j = jn; j < 64; ++j) codes[j] = uint8_t(kNoClass);
  for (int c = 0; c < 3; ++c) panel.masks[size_t(k * 3 + c)] = uint32_t(code_mask(codes, uint8_t(c)));
}

template <typename T>
void pack_columns(const MatmulProblem<T> &p, const T *y, int64_t j0, int jn, int64_t words,
                  ColumnPanel<T> &panel) {
  constexpr int B = column_block<T>();
  panel.values.assign(size_t(words) * kBlockK * kValueSlots * B, T(0));
  if (kMaskedPanel) panel.masks.assign(size_t(words) * kBlockK * 3, 0);
  panel.bits.assign(size_t(B) * 3 * words, 0);
  panel.totals.assign(size_t(B) * 3, 0);
  panel.complete = true;
  panel.present[0] = panel.present[1] = panel.present[2] = false;
  panel.live.assign(size_t(words), 0);
  alignas(64) T tile[B * kBlockK];  // one k block of the columns, column-major: y read by rows
  for (int64_t w = 0; w < words; ++w) {
    const int n = int(std::min<int64_t>(kBlockK, p.k - w * kBlockK));
    for (int i = 0; i < n; ++i) {
      const T *row = y + (w * kBlockK + i) * p.y_row_stride + j0 * p.y_col_stride;
      for (int j = 0; j < jn; ++j) tile[j * kBlockK + i] = row[j * p.y_col_stride];
      if (kMaskedPanel) pack_masked_row(p, row, jn, w * kBlockK + i, panel);
    }
    uint8_t live = 0;
    for (int j = 0; j < jn; ++j) {
      const T *column = tile + j * kBlockK;
      const WordMasks m = classify_word(column, 1, n, p.y_threshold);
      panel.complete = panel.complete && m.complete;
      live |= m.infinite ? kSlotInfinite : 0;
      for (int c = 0; c < 3; ++c) {
        panel.bits[(size_t(c) * words + w) * B + j] = m.cls[c];
        panel.totals[size_t(j) * 3 + c] += popcount64(m.cls[c]);
        panel.present[c] = panel.present[c] || m.cls[c] != 0;
        live |= uint8_t(c == kNearZero ? m.near_nonzero : m.cls[c] != 0) << c;
        if (kMaskedPanel) continue;
        T *slot = panel.values.data() + (w * kBlockK * kValueSlots + c) * B + j;
        for (uint64_t rest = m.cls[c]; rest != 0; rest &= rest - 1) {
          const int i = __builtin_ctzll(rest);
          slot[i * kValueSlots * B] = column[i];
        }
      }
    }
    panel.live[size_t(w)] = live;
  }
}

}  // namespace matmul_detail
}  // namespace nearzero
