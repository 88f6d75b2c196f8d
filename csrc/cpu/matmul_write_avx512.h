// The fused matmul's full result at the AVX-512 level: one row's cells written with streaming
// stores. Included by matmul_cpu.cpp at the AVX-512 level only.
#pragma once
#include "cpu/classify_output.h"
#include "cpu/matmul_pack_cpu.h"

#include <cstdint>
#include <immintrin.h>
#include <type_traits>

namespace nearzero {
namespace matmul_detail {

// The full result's counts and sums of one row's B cells, written plane by plane with
// streaming stores. A large result is written once and not read back by the kernel: plain
// stores would first read each line of it from memory (72 MB of reads for 1024 x 1024 cells).
// Only for whole 64-byte lines of int32 counts; false (nothing written) otherwise.
template <typename T>
bool stream_row(const ClassifyOutput &out, int64_t cell0, int jn, const int64_t *counts,
                const double *sums) {
  constexpr int B = column_block<T>();
  int32_t *count_out = static_cast<int32_t *>(out.counts) + cell0;
  T *sum_out = static_cast<T *>(out.sums) + cell0;
  const bool lines = (reinterpret_cast<uintptr_t>(count_out) | reinterpret_cast<uintptr_t>(sum_out) |
                      uintptr_t(out.pair_stride * 4)) % 64 == 0;
  if (out.mode != ReduceMode::kNone || out.mask != nullptr || out.cell_stride != 1 ||
      out.counts_int64 || jn != B || !lines)
    return false;
  for (int q = 0; q < 9; ++q, count_out += out.pair_stride, sum_out += out.pair_stride) {
    const int64_t *c = counts + q * B;
    const double *v = sums + q * B;
    for (int j = 0; j < B; j += 16) {  // 16 counts: one line
      const __m256i low = _mm512_cvtepi64_epi32(_mm512_loadu_si512(c + j));
      const __m256i high = _mm512_cvtepi64_epi32(_mm512_loadu_si512(c + j + 8));
      _mm512_stream_si512(reinterpret_cast<__m512i *>(count_out + j),
                          _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1));
    }
    if constexpr (std::is_same<T, float>::value) {
      for (int j = 0; j < B; j += 16) {
        const __m256 low = _mm512_cvtpd_ps(_mm512_loadu_pd(v + j));
        const __m256 high = _mm512_cvtpd_ps(_mm512_loadu_pd(v + j + 8));
        _mm512_stream_ps(sum_out + j, _mm512_insertf32x8(_mm512_castps256_ps512(low), high, 1));
      }
    } else {
      for (int j = 0; j < B; j += 8) _mm512_stream_pd(sum_out + j, _mm512_loadu_pd(v + j));
    }
  }
  return true;
}

}  // namespace matmul_detail
}  // namespace nearzero
