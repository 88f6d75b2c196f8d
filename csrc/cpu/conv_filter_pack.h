// The packing side of the kernel-gradient kernel: the problem and workspace, d_out panels of a
// column block and x rows per k block, and the tap sums of the panel codes for derived counts.
// At the AVX-512 level (float) panels take one load or gather of 16 columns per k and rows 16 k
// per step, compressed into the per-class lists of a RowBlock; scalar packing was most of that
// kernel's time, and other levels and types keep it. Included by conv_filter_grad_cpu.cpp only.
#pragma once
#include "common/classify_rule.h"
#include "cpu/conv_layout.h"
#include "cpu/conv_panel.h"
#include "cpu/conv_row_block.h"
#include "cpu/conv_tile.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>
#define NEARZERO_FILTER_PACK_AVX512 1
#endif

namespace nearzero {
namespace conv_detail {

// x offset of a k that reads padding (no x element).
constexpr int64_t kOutsideInput = -1;

#if defined(NEARZERO_FILTER_PACK_AVX512)

// True when columns `channel` elements apart fit the 32-bit indices of one 16-lane gather.
inline bool column_gather_fits(int64_t channel) { return channel >= 0 && channel < (1 << 26); }

// Packs entries [0, kn) of a column block: entry i holds, in lane j < columns, the d_out
// element at base[i] + j * channel (and its code). Returns the slot_flags of every value.
inline int pack_column_panel_avx512(const float *d_out, const uint8_t *codes,
                                    const int64_t *base, int64_t kn, int64_t channel,
                                    int columns, PanelEntry<float> *entries) {
  const __mmask16 valid = __mmask16((1u << columns) - 1);
  const __m512i index = _mm512_mullo_epi32(
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
      _mm512_set1_epi32(int32_t(channel)));
  const __m512i low_byte = _mm512_set1_epi32(0xff);
  SeenVectors seen;
  for (int64_t i = 0; i < kn; ++i) {
    __m512 x;
    __m512i code;
    if (channel == 1) {  // channels_last: the columns are adjacent
      x = _mm512_maskz_loadu_ps(valid, d_out + base[i]);
      code = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(valid, codes + base[i]));
    } else {
      x = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, index, d_out + base[i], 4);
      code = _mm512_and_si512(
          _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid, index, codes + base[i], 1),
          low_byte);
    }
    put_entry_avx512(x, code, valid, entries[i], seen);
  }
  return seen.flags();
}

// Appends row `row` of a RowBlock: for k in [0, kn), the x element at x_offset[k] + channel
// (none where x_offset[k] is kOutsideInput), with in-block offset k. Sixteen k per step: a
// masked vector load where their elements are adjacent, else two gathers; each class's values and
// offsets are compressed into its list with one full-vector store (the lists have room).
inline void append_row_avx512(const float *x, const uint8_t *codes, const int64_t *x_offset,
                              int64_t kn, int64_t channel, RowBlock<float> &block, int64_t row) {
  float *values = block.values.data() + row * 3 * kRowListStride;
  PanelOffset *offsets = block.offsets.data() + row * 3 * kRowListStride;
  const float *x_at = x + channel;
  const uint8_t *codes_at = codes + channel;
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i entry_bytes = _mm512_set1_epi32(int32_t(sizeof(PanelEntry<float>)));
  const __m512i step8 = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
  const __m512i outside = _mm512_set1_epi64(kOutsideInput);
  int32_t length[3] = {0, 0, 0};
  __mmask16 infinite = 0;
  for (int64_t i = 0; i < kn; i += 16) {
    const int left = int(kn - i < 16 ? kn - i : 16);
    const __mmask8 in_low = __mmask8(left >= 8 ? 0xff : (1u << left) - 1);
    const __mmask8 in_high = __mmask8(left >= 16 ? 0xff : left > 8 ? (1u << (left - 8)) - 1 : 0);
    const __m512i lo = _mm512_maskz_loadu_epi64(in_low, x_offset + i);
    const __m512i hi = _mm512_maskz_loadu_epi64(in_high, x_offset + i + 8);
    const __mmask8 valid_lo = _mm512_mask_cmpneq_epi64_mask(in_low, lo, outside);
    const __mmask8 valid_hi = _mm512_mask_cmpneq_epi64_mask(in_high, hi, outside);
    const __mmask16 valid = __mmask16(valid_lo | (unsigned(valid_hi) << 8));
    if (valid == 0) continue;
    // Adjacent: the valid lanes read x_offset = start + lane (padding lanes at a row's ends
    // aside), so one masked load reads them.
    const int first_valid = __builtin_ctz(unsigned(valid));
    const int64_t start = x_offset[i + first_valid] - first_valid;
    const __m512i run = _mm512_add_epi64(_mm512_set1_epi64(start), step8);
    const bool adjacent =
        _mm512_mask_cmpeq_epi64_mask(valid_lo, lo, run) == valid_lo &&
        _mm512_mask_cmpeq_epi64_mask(valid_hi, hi, _mm512_add_epi64(run, _mm512_set1_epi64(8))) ==
            valid_hi;
    __m512 v;
    __m512i code;
    if (adjacent) {  // masked-out lanes are not read, so `start` may lie before the operand
      const uintptr_t x_start =
          reinterpret_cast<uintptr_t>(x_at) + uintptr_t(start) * sizeof(float);
      const uintptr_t codes_start = reinterpret_cast<uintptr_t>(codes_at) + uintptr_t(start);
      v = _mm512_maskz_loadu_ps(valid, reinterpret_cast<const float *>(x_start));
      code = _mm512_cvtepu8_epi32(
          _mm_maskz_loadu_epi8(valid, reinterpret_cast<const uint8_t *>(codes_start)));
    } else {
      const __m256 v_lo = _mm512_mask_i64gather_ps(_mm256_setzero_ps(), valid_lo, lo, x_at, 4);
      const __m256 v_hi = _mm512_mask_i64gather_ps(_mm256_setzero_ps(), valid_hi, hi, x_at, 4);
      v = _mm512_insertf32x8(_mm512_castps256_ps512(v_lo), v_hi, 1);
      const __m256i c_lo =
          _mm512_mask_i64gather_epi32(_mm256_setzero_si256(), valid_lo, lo, codes_at, 1);
      const __m256i c_hi =
          _mm512_mask_i64gather_epi32(_mm256_setzero_si256(), valid_hi, hi, codes_at, 1);
      code = _mm512_and_si512(_mm512_inserti32x8(_mm512_castsi256_si512(c_lo), c_hi, 1),
                              _mm512_set1_epi32(0xff));
    }
    const __m512i cls = _mm512_and_si512(code, _mm512_set1_epi32(3));
    const __m512i at = _mm512_mullo_epi32(_mm512_add_epi32(lane, _mm512_set1_epi32(int32_t(i))),
                                          entry_bytes);
    for (int a = 0; a < 3; ++a) {
      const __mmask16 mine = _mm512_mask_cmpeq_epi32_mask(valid, cls, _mm512_set1_epi32(a));
      _mm512_storeu_ps(values + a * kRowListStride + length[a], _mm512_maskz_compress_ps(mine, v));
      _mm512_storeu_si512(offsets + a * kRowListStride + length[a],
                          _mm512_maskz_compress_epi32(mine, at));
      length[a] += _mm_popcnt_u32(mine);
    }
    infinite |= _mm512_mask_test_epi32_mask(valid, code, _mm512_set1_epi32(kInfiniteBit));
  }
  for (int a = 0; a < 3; ++a) block.lengths[size_t(row * 3 + a)] = length[a];
  block.infinite[size_t(row)] = infinite != 0;
}

#endif

template <typename T> struct FilterProblem {
  const ConvGeometry &g;
  const T *x, *d_out;
  const uint8_t *x_codes, *d_out_codes;
  ActivationStrides xs, ds;
  KernelStrides ks;
  int64_t taps, in_per_group, out_per_group, out_positions, k_total;
};

template <typename T> struct FilterWorkspace {
  AlignedVector<PanelEntry<T>> panel;  // [column block][kBlockK]
  std::vector<int64_t> x_base, d_out_base, position;  // per k of the block
  std::vector<int64_t> x_offset;                      // per k, for the current tap
  // Per tap of the tile (from the first): the panel's count codes summed over the k where the
  // tap reads x, [tap][column block][lane], and how many k those are (see add_row).
  std::vector<int32_t> tap_codes, tap_entries;
  RowBlock<T> rows;
  TileAccumulators<T> acc;
};

// Packs the d_out panels of the task's column blocks for the block's k (ws.d_out_base);
// returns the nonzero-slot bits and kPanelInfinite as TileAccumulators::add_row takes them.
template <typename T>
int pack_d_out_panels(const FilterProblem<T> &p, int64_t cb_begin, int64_t cbs, int64_t kn,
                      FilterWorkspace<T> &ws) {
  constexpr int W = lanes<T>();
#if defined(NEARZERO_FILTER_PACK_AVX512)
  if constexpr (std::is_same_v<T, float>) {
    if (column_gather_fits(p.ds.channel)) {
      ws.panel.resize(size_t(cbs * kBlockK));
      int flags = 0;
      for (int64_t cb = 0; cb < cbs; ++cb) {
        const int64_t col0 = (cb_begin + cb) * W;
        const int jn = int(std::min<int64_t>(W, p.out_per_group - col0));
        flags |= pack_column_panel_avx512(p.d_out + col0 * p.ds.channel,
                                          p.d_out_codes + col0 * p.ds.channel,
                                          ws.d_out_base.data(), kn, p.ds.channel, jn,
                                          ws.panel.data() + cb * kBlockK);
      }
      return flags;
    }
  }
#endif
  ws.panel.assign(size_t(cbs * kBlockK), PanelEntry<T>{});
  uint8_t panel_codes = 0;
  for (int64_t cb = 0; cb < cbs; ++cb) {
    const int64_t col0 = (cb_begin + cb) * W;
    const int jn = int(std::min<int64_t>(W, p.out_per_group - col0));
    PanelEntry<T> *entries = ws.panel.data() + cb * kBlockK;
    for (int64_t i = 0; i < kn; ++i)
      for (int j = 0; j < jn; ++j) {
        const int64_t at = ws.d_out_base[i] + (col0 + j) * p.ds.channel;
        put_panel_value(entries[i], j, p.d_out[at], p.d_out_codes[at]);
        panel_codes |= p.d_out_codes[at];
      }
  }
  return 7 | ((panel_codes & kInfiniteBit) ? kPanelInfinite : 0);
}

// Appends row r of the tile (input channel ci, its tap's ws.x_offset) for the block's k.
template <typename T>
void append_x_row(const FilterProblem<T> &p, int64_t ci, int64_t kn, FilterWorkspace<T> &ws,
                  int64_t r) {
  const int64_t channel = ci * p.xs.channel;
#if defined(NEARZERO_FILTER_PACK_AVX512)
  if constexpr (std::is_same_v<T, float>) {
    append_row_avx512(p.x, p.x_codes, ws.x_offset.data(), kn, channel, ws.rows, r);
    return;
  }
#endif
  RowAppender<T> row(ws.rows, r);
  for (int64_t i = 0; i < kn; ++i) {
    if (ws.x_offset[i] == kOutsideInput) continue;
    const int64_t at = ws.x_offset[i] + channel;
    row.add(p.x[at], p.x_codes[at], int(i));
  }
}

// The panel codes of every column block summed over the k where the current tap reads x
// (ws.x_offset), into tap `tap` of ws.tap_codes: a row of that tap whose class lists cover all of
// them takes its longest class's counts from these sums (TileAccumulators::add_row).
template <typename T>
void sum_tap_codes(FilterWorkspace<T> &ws, int64_t tap, int64_t cbs, int64_t kn) {
  constexpr int W = lanes<T>();
  int32_t entries = 0;
  for (int64_t i = 0; i < kn; ++i) entries += ws.x_offset[size_t(i)] != kOutsideInput;
  ws.tap_entries[size_t(tap)] = entries;
  for (int64_t cb = 0; cb < cbs; ++cb) {
    const PanelEntry<T> *panel = ws.panel.data() + cb * kBlockK;
    int32_t sums[W] = {};
    for (int64_t i = 0; i < kn; ++i) {
      const int32_t keep = ws.x_offset[size_t(i)] != kOutsideInput ? -1 : 0;
#pragma omp simd
      for (int j = 0; j < W; ++j) sums[j] += panel[i].codes[j] & keep;
    }
    for (int j = 0; j < W; ++j) ws.tap_codes[size_t((tap * cbs + cb) * W + j)] = sums[j];
  }
}

}  // namespace conv_detail
}  // namespace nearzero
