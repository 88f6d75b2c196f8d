// The activation side of the forward and input-gradient kernels: the problem description, the
// k blocks over (tap, channel), lane tiles of consecutive positions, and the packing of one
// tile's activation patches into class-slotted panels. Included by conv_channel_rows.h only.
#pragma once
#include "common/classify_rule.h"
#include "cpu/conv_layout.h"
#include "cpu/conv_tile.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace nearzero {
namespace conv_detail {

// Cells (n, position, channel) of an activation; lanes run over positions, rows over the
// cell channels of a group. k = tap * k_channels + channel of the gathered activation A.
template <typename T> struct ChannelRowsProblem {
  int64_t batch = 0, groups = 1;
  int64_t cell_size[3];      // spatial size of the cells
  const T *a_values;         // A, gathered per position, tap and channel
  const uint8_t *a_codes;
  ActivationStrides a_strides;
  int64_t a_size[3];
  int64_t a_elements = 0;
  // false: A position = cell * stride - pad + tap * dilation (forward);
  // true: A position * stride = cell + pad - tap * dilation (input gradient).
  bool transposed = false;
  int64_t stride[3], dilation[3], pad_before[3], kernel_size[3];
  int64_t k_channels = 0;    // channels of A per group
  int64_t rows = 0;          // cell channels per group
  // Kernel element (row j, tap, k channel kc) of group g is at
  //   sum(tap_d * b_tap_stride[d]) + kc * b_k_stride + j * b_row_stride + g * b_group_stride
  const T *b_values;
  const uint8_t *b_codes;
  int64_t b_tap_stride[3], b_k_stride, b_row_stride, b_group_stride;
  ActivationStrides out_strides;  // cell (n, position, g * rows + j)
};

// Kernel entries per activation panel: up to 256 x 256 B. Larger than the L1-sized kBlockK
// because each (row, block, class) segment costs a reload of its accumulators; one block
// covers a whole 3x3 kernel of up to 28 channels.
constexpr int64_t kPanelBlockK = 256;

// A block of k: a run of whole taps, or a chunk of one tap's channels when a tap alone exceeds
// kPanelBlockK. In-block offset of (tap, channel) = (tap - tap_begin) * width + channel - begin.
struct KBlock {
  int64_t tap_begin, tap_end, channel_begin, channel_end, k_begin;
};

inline std::vector<KBlock> tap_channel_blocks(int64_t taps, int64_t channels) {
  std::vector<KBlock> blocks;
  if (channels == 0) return blocks;
  if (channels <= kPanelBlockK) {
    // Equal blocks: a short last block would mean short class segments (more overhead each).
    const int64_t count = (taps + kPanelBlockK / channels - 1) / (kPanelBlockK / channels);
    const int64_t per_block = (taps + count - 1) / count;
    for (int64_t t = 0; t < taps; t += per_block)
      blocks.push_back({t, std::min(taps, t + per_block), 0, channels, t * channels});
    return blocks;
  }
  for (int64_t t = 0; t < taps; ++t)
    for (int64_t c = 0; c < channels; c += kPanelBlockK)
      blocks.push_back({t, t + 1, c, std::min(channels, c + kPanelBlockK), t * channels + c});
  return blocks;
}

// Up to lanes<T>() consecutive positions of one batch entry.
struct LaneTile {
  int64_t n = 0;
  int lanes = 0;
  bool same_row = false;  // one spatial row, consecutive last-axis coordinates
  int64_t coords[16][3];
};

template <typename T>
void make_lane_tile(const ChannelRowsProblem<T> &p, int64_t tile_index, LaneTile &tile) {
  constexpr int W = lanes<T>();
  const int64_t positions = p.cell_size[0] * p.cell_size[1] * p.cell_size[2];
  const int64_t per_batch = (positions + W - 1) / W;
  tile.n = tile_index / per_batch;
  const int64_t pos0 = (tile_index % per_batch) * W;
  tile.lanes = int(std::min<int64_t>(W, positions - pos0));
  int64_t c[3];
  unflatten3(pos0, p.cell_size, c);
  tile.same_row = c[2] + tile.lanes <= p.cell_size[2];
  for (int l = 0; l < tile.lanes; ++l) {
    for (int d = 0; d < 3; ++d) tile.coords[l][d] = c[d];
    if (++c[2] == p.cell_size[2]) {
      c[2] = 0;
      if (++c[1] == p.cell_size[1]) {
        c[1] = 0;
        ++c[0];
      }
    }
  }
}

// Index along dimension d of A that tap coordinate t reads for cell coordinate o, if any.
template <typename T>
inline bool source_index(const ChannelRowsProblem<T> &p, int d, int64_t o, int64_t t,
                         int64_t &i) {
  if (!p.transposed) {
    i = o * p.stride[d] - p.pad_before[d] + t * p.dilation[d];
    return i >= 0 && i < p.a_size[d];
  }
  const int64_t num = o + p.pad_before[d] - t * p.dilation[d];
  if (num < 0 || num % p.stride[d] != 0) return false;
  i = num / p.stride[d];
  return i < p.a_size[d];
}

// Writes lane l of a panel entry: x in the slot of its class, zeros in the others.
template <typename T> inline void put_lane(PanelEntry<T> &e, int l, T x, int cls) {
  e.values[0][l] = cls == kPositive ? x : T(0);
  e.values[1][l] = cls == kNearZero ? x : T(0);
  e.values[2][l] = cls == kNegative ? x : T(0);
  e.codes[l] = cls == kNoClass ? 0 : int32_t(1) << (kCountBits * cls);
}

// What one packed value tells the kernel: bit `cls` if it is a nonzero value of class `cls`,
// kPanelInfinite if it is +-inf (a lane of no class adds nothing).
template <typename T> inline int32_t slot_flags(T x, int32_t cls, uint8_t code) {
  if (cls == kNoClass) return 0;
  return (x != T(0) ? 1 << cls : 0) | ((code & kInfiniteBit) ? kPanelInfinite : 0);
}

#if defined(__AVX512F__)
inline unsigned ok_bit(int32_t valid) { return valid ? 1u : 0u; }

// What the entries written by put_entry_avx512 hold, gathered as they are written (and read
// once at the end by flags()): the bitwise OR of each class slot's values and of the codes of
// the lanes that have a class.
struct SeenVectors {
  __m512i values[3] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
  __m512i codes = _mm512_setzero_si512();

  // slot_flags of every lane seen: bit b where a class-b value is nonzero (a value is zero if
  // all its bits but the sign are: +-0; NaN is nonzero, as x != 0 says), kPanelInfinite where
  // some code has kInfiniteBit.
  int flags() const {
    const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
    int result = 0;
    for (int b = 0; b < 3; ++b)
      result |= _mm512_test_epi32_mask(values[b], magnitude) ? 1 << b : 0;
    result |= _mm512_test_epi32_mask(codes, _mm512_set1_epi32(kInfiniteBit)) ? kPanelInfinite : 0;
    return result;
  }
};

// One panel entry at the AVX-512 level (float): 16 values and their codes in one register
// each, classes as k masks (lanes outside `valid` have no class), so the entry is written with
// masked moves and no lane array goes through the stack; each lane's count code comes from a
// permute of the four codes by class.
inline void put_entry_avx512(__m512 x, __m512i code, __mmask16 valid, PanelEntry<float> &e,
                             SeenVectors &seen) {
  const __m512i cls = _mm512_and_si512(code, _mm512_set1_epi32(3));
  const __mmask16 p = _mm512_mask_cmpeq_epi32_mask(valid, cls, _mm512_set1_epi32(kPositive));
  const __mmask16 z = _mm512_mask_cmpeq_epi32_mask(valid, cls, _mm512_set1_epi32(kNearZero));
  const __mmask16 n = _mm512_mask_cmpeq_epi32_mask(valid, cls, _mm512_set1_epi32(kNegative));
  const __m512i xi = _mm512_castps_si512(x);
  const __m512i values[3] = {_mm512_maskz_mov_epi32(p, xi), _mm512_maskz_mov_epi32(z, xi),
                             _mm512_maskz_mov_epi32(n, xi)};
  static_assert(kPositive == 0 && kNearZero == 1 && kNegative == 2 && kNoClass == 3,
                "class codes index the count codes");
  const __m512i by_class = _mm512_setr_epi32(
      1 << (kCountBits * kPositive), 1 << (kCountBits * kNearZero),
      1 << (kCountBits * kNegative), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  for (int b = 0; b < 3; ++b) {
    _mm512_storeu_si512(e.values[b], values[b]);
    seen.values[b] = _mm512_or_si512(seen.values[b], values[b]);
  }
  _mm512_storeu_si512(e.codes, _mm512_maskz_permutexvar_epi32(valid, cls, by_class));
  seen.codes = _mm512_mask_or_epi32(seen.codes, p | z | n, seen.codes, code);
}

// The vector path of pack_activation_panel for float: 16 adjacent values and their codes.
inline void pack_lanes_avx512(const float *v, const uint8_t *codes, __mmask16 valid,
                              PanelEntry<float> &e, SeenVectors &seen) {
  put_entry_avx512(
      _mm512_loadu_ps(v),
      _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(codes))), valid, e,
      seen);
}
#endif

// Packs the tile's activation values for k block `kb` of `group` into panel[0, block size);
// returns which class slots hold a nonzero value (bit b = class b).
template <typename T>
int pack_activation_panel(const ChannelRowsProblem<T> &p, const KBlock &kb, int64_t group,
                          const LaneTile &tile, PanelEntry<T> *panel) {
  constexpr int W = lanes<T>();
  const int64_t width = kb.channel_end - kb.channel_begin, ch = p.a_strides.channel;
  const int64_t base = tile.n * p.a_strides.batch + group * p.k_channels * ch;
  // Lanes whose sources are adjacent elements (stride 1 along a contiguous last axis) are
  // loaded as vectors; lanes in padding are masked to no class afterwards.
  const bool adjacent = tile.same_row && tile.lanes == W && p.stride[2] == 1 &&
                        p.a_strides.spatial[2] == 1;
  int32_t valid[W];
  int64_t offset[W];
  int32_t seen[W] = {};  // per lane: slot_flags of every value packed
#if defined(__AVX512F__)
  SeenVectors seen_vectors;  // what the vector path wrote
  __mmask16 valid_mask = 0;
#endif
  for (int64_t tap = kb.tap_begin; tap < kb.tap_end; ++tap) {
    int64_t t[3];
    unflatten3(tap, p.kernel_size, t);
    PanelEntry<T> *entries = panel + (tap - kb.tap_begin) * width;
    bool any = false;
    for (int l = 0; l < W; ++l) {
      int64_t at = base, i = 0;
      bool ok = l < tile.lanes;
      for (int d = 0; d < 3 && ok; ++d) {
        ok = source_index(p, d, tile.coords[l][d], t[d], i);
        at += i * p.a_strides.spatial[d];
      }
      valid[l] = ok;
      offset[l] = at;
      any = any || ok;
    }
#if defined(__AVX512F__)
    valid_mask = 0;
    for (int l = 0; l < W && l < 16; ++l) valid_mask |= __mmask16(ok_bit(valid[l]) << l);
#endif
    if (!any) {
      for (int64_t e = 0; e < width; ++e) entries[e] = PanelEntry<T>{};
      continue;
    }
    // The first lane's own source index (it may be padding) anchors the vector window.
    const int64_t first = tile.coords[0][2] + (p.transposed ? 1 : -1) * p.pad_before[2] +
                          (p.transposed ? -1 : 1) * t[2] * p.dilation[2];
    int64_t anchor = base + first;
    for (int d = 0; d < 2; ++d) {
      int64_t i;
      if (!source_index(p, d, tile.coords[0][d], t[d], i)) i = 0;  // no valid lane then
      anchor += i * p.a_strides.spatial[d];
    }
    const bool vector = adjacent && anchor + kb.channel_begin * ch >= 0 &&
                        anchor + (kb.channel_end - 1) * ch + W <= p.a_elements;
    for (int64_t c = kb.channel_begin; c < kb.channel_end; ++c) {
      PanelEntry<T> &e = entries[c - kb.channel_begin];
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float>) {
        if (vector) {
          pack_lanes_avx512(p.a_values + anchor + c * ch, p.a_codes + anchor + c * ch, valid_mask,
                            e, seen_vectors);
          continue;
        }
      }
#endif
      if (vector) {  // separate simple loops: each compiles to a few vector instructions
        const T *v = p.a_values + anchor + c * ch;
        const uint8_t *codes = p.a_codes + anchor + c * ch;
        int32_t cls[W];
#pragma omp simd
        for (int l = 0; l < W; ++l) cls[l] = int32_t(codes[l] & 3) | (valid[l] ? 0 : kNoClass);
        for (int a = 0; a < 3; ++a) {
#pragma omp simd
          for (int l = 0; l < W; ++l) e.values[a][l] = cls[l] == a ? v[l] : T(0);
        }
#pragma omp simd
        for (int l = 0; l < W; ++l)
          e.codes[l] = cls[l] == kNoClass ? 0 : int32_t(1) << (kCountBits * cls[l]);
#pragma omp simd
        for (int l = 0; l < W; ++l) {  // slot_flags, branch-free
          const int32_t real = cls[l] != kNoClass;
          seen[l] |= ((int32_t(v[l] != T(0)) & real) << cls[l]) |
                     ((int32_t(codes[l] & kInfiniteBit) << 1) * real);
        }
      } else {
        for (int l = 0; l < W; ++l) {
          const int64_t at = offset[l] + c * ch;
          const T x = valid[l] ? p.a_values[at] : T(0);
          const uint8_t code = valid[l] ? p.a_codes[at] : uint8_t(kNoClass);
          put_lane(e, l, x, code & 3);
          seen[l] |= slot_flags(x, code & 3, code);
        }
      }
    }
  }
  int32_t flags = 0;
  for (int l = 0; l < W; ++l) flags |= seen[l];
#if defined(__AVX512F__)
  flags |= seen_vectors.flags();
#endif
  return flags;
}

}  // namespace conv_detail
}  // namespace nearzero
