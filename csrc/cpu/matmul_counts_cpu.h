// Counts of the fused matmul from class bit masks over k: popcounts of the pairs of P and N,
// the other pairs from class totals. Included by matmul_cpu.cpp only.
#pragma once
#include "cpu/matmul_pack_cpu.h"

#include <algorithm>
#include <cstdint>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace nearzero {
namespace matmul_detail {

#if defined(__AVX512BW__)
// out[i][j] += popcount(x[i][w] & y[w * B + j]) for X rows of bits x[i] with 512-bit vectors,
// eight columns to a vector: one vpopcntq per eight words, each load of y serving the X rows.
// Only where the CPU has AVX512_VPOPCNTDQ (Ice Lake, Zen 4 and later), which x86-64-v4 does
// not include: checked at run time; other AVX-512 CPUs (Skylake-X) take the AVX2 nibble lookup
// below.
template <int B, int X>
__attribute__((target("avx512vpopcntdq"))) void add_matches_vpopcnt(
    const uint64_t *const (&x)[X], const uint64_t *y, int64_t words, int64_t *const (&out)[X]) {
  constexpr int G = B / 8;
  __m512i total[X][G];
  for (int i = 0; i < X; ++i)
    for (int g = 0; g < G; ++g) total[i][g] = _mm512_setzero_si512();
  for (int64_t w = 0; w < words; ++w) {
    __m512i xw[X];
    for (int i = 0; i < X; ++i) xw[i] = _mm512_set1_epi64(int64_t(x[i][w]));
    for (int g = 0; g < G; ++g) {
      const __m512i yw = _mm512_loadu_si512(y + w * B + 8 * g);
      for (int i = 0; i < X; ++i)
        total[i][g] = _mm512_add_epi64(total[i][g], _mm512_popcnt_epi64(_mm512_and_si512(xw[i], yw)));
    }
  }
  for (int i = 0; i < X; ++i)
    for (int g = 0; g < G; ++g)
      _mm512_storeu_si512(out[i] + 8 * g,
                          _mm512_add_epi64(_mm512_loadu_si512(out[i] + 8 * g), total[i][g]));
}

inline bool cpu_has_vpopcntdq() {
  static const bool has = __builtin_cpu_supports("avx512vpopcntdq");
  return has;
}
#endif

// out[j] += popcount(x[w] & y[w * B + j]) over the words w, for the B columns of a panel.
template <int B>
void add_matches(const uint64_t *x, const uint64_t *y, int64_t words, int64_t *out) {
#if defined(__AVX512BW__)
  static_assert(B % 8 == 0, "column block must be a multiple of 8");
  if (cpu_has_vpopcntdq()) return add_matches_vpopcnt<B, 1>({x}, y, words, {out});
#endif
#if defined(__AVX2__)
  // Per-byte popcounts by nibble lookup, four columns to a vector, added as bytes for up to 31
  // words (31 * 8 < 256) and then widened by a sum of absolute differences.
  const __m256i lookup = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1,
                                          1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i nibble = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
  constexpr int G = 4;  // vectors of four columns handled together
  static_assert(B % (4 * G) == 0, "column block must be a multiple of 16");
  for (int g0 = 0; g0 < B; g0 += 4 * G) {
    __m256i total[G];
    for (int g = 0; g < G; ++g) total[g] = zero;
    for (int64_t w0 = 0; w0 < words; w0 += 31) {
      const int64_t w1 = std::min<int64_t>(words, w0 + 31);
      __m256i bytes[G];
      for (int g = 0; g < G; ++g) bytes[g] = zero;
      for (int64_t w = w0; w < w1; ++w) {
        const __m256i xw = _mm256_set1_epi64x(int64_t(x[w]));
        const uint64_t *yw = y + w * B + g0;
        for (int g = 0; g < G; ++g) {
          const __m256i v = _mm256_and_si256(
              xw, _mm256_loadu_si256(reinterpret_cast<const __m256i *>(yw + 4 * g)));
          const __m256i low = _mm256_and_si256(v, nibble);
          const __m256i high = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
          bytes[g] = _mm256_add_epi8(bytes[g], _mm256_add_epi8(_mm256_shuffle_epi8(lookup, low),
                                                               _mm256_shuffle_epi8(lookup, high)));
        }
      }
      for (int g = 0; g < G; ++g) total[g] = _mm256_add_epi64(total[g], _mm256_sad_epu8(bytes[g], zero));
    }
    for (int g = 0; g < G; ++g) {
      alignas(32) int64_t lanes[4];
      _mm256_store_si256(reinterpret_cast<__m256i *>(lanes), total[g]);
      for (int l = 0; l < 4; ++l) out[g0 + 4 * g + l] += lanes[l];
    }
  }
#else
  for (int64_t w = 0; w < words; ++w)
    for (int j = 0; j < B; ++j) out[j] += popcount64(x[w] & y[w * B + j]);
#endif
}

// Counts of one row against a column panel, pair-major: counts[q * B + j]. Pairs of two
// non-empty classes come from class bit masks; where the row and column hold no NaN, only the
// pairs of P and N need popcounts (none for a class either side lacks, as N after a ReLU) and
// the other five follow from the row's and the column's class totals.
template <typename T>
void row_counts(const PackedRow<T> &row, const ColumnPanel<T> &cols, int jn, int64_t words,
                int64_t *counts) {
  constexpr int B = column_block<T>();
  const bool complete = row.complete && cols.complete;
  for (int q = 0; q < 9 * B; ++q) counts[q] = 0;
  for (int b = 0; b < 3; ++b) {
    if (!cols.present[b]) continue;
    const uint64_t *y = cols.bits.data() + size_t(b) * words * B;
    int rows[3], n = 0;  // classes of x that need (a, b) from popcounts
    for (int a = 0; a < 3; ++a)
      if (!(complete && (a == kNearZero || b == kNearZero)) && row.class_totals[a] != 0) rows[n++] = a;
    auto bits = [&](int i) { return row.bits.data() + size_t(rows[i]) * words; };
    auto out = [&](int i) { return counts + class_pair_index(rows[i], b) * B; };
#if defined(__AVX512BW__)
    if (n == 2 && cpu_has_vpopcntdq()) {  // P and N rows against one load of y
      add_matches_vpopcnt<B, 2>({bits(0), bits(1)}, y, words, {out(0), out(1)});
      continue;
    }
#endif
    for (int i = 0; i < n; ++i) add_matches<B>(bits(i), y, words, out(i));
  }
  if (!complete) return;
  for (int j = 0; j < jn; ++j) {
    int64_t *c = counts + j;
    const int64_t *column = cols.totals.data() + size_t(j) * 3;
    c[1 * B] = row.class_totals[0] - c[0] - c[2 * B];      // PZ
    c[7 * B] = row.class_totals[2] - c[6 * B] - c[8 * B];  // NZ
    c[3 * B] = column[0] - c[0] - c[6 * B];                // ZP
    c[5 * B] = column[2] - c[2 * B] - c[8 * B];            // ZN
    c[4 * B] = column[1] - c[1 * B] - c[7 * B];            // ZZ
  }
}

}  // namespace matmul_detail
}  // namespace nearzero
