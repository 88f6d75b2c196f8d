// Sums of the fused matmul below the AVX-512 level: one segment (one row, one k block, one class
// of x) against the per-class value slots of a column panel (see matmul_pack_cpu.h). Included
// by matmul_cpu.cpp where AVX-512 is off.
#pragma once
#include "cpu/matmul_pack_cpu.h"

#include <cstdint>

namespace nearzero {
namespace matmul_detail {

// Register vectors of 32 bytes (GCC/Clang vector extensions): fixed-size accumulators that the
// compiler keeps in registers, where plain arrays are copied through the stack. A second set of
// accumulators (kAccumulatorSets 2) would take every other product, for twice the independent
// multiply-add chains; one set measured as fast at AVX2.
constexpr int kVectorBytes = 32;
constexpr int kAccumulatorSets = 1;
typedef float FloatV __attribute__((vector_size(kVectorBytes)));
typedef double DoubleV __attribute__((vector_size(kVectorBytes)));
template <typename T> struct VecOf;
template <> struct VecOf<float> { using type = FloatV; };
template <> struct VecOf<double> { using type = DoubleV; };
template <typename T> using Vec = typename VecOf<T>::type;

template <typename T> inline Vec<T> load_vec(const T *p) {
  Vec<T> v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}
template <typename T> inline void store_vec(T *p, Vec<T> v) { __builtin_memcpy(p, &v, sizeof(v)); }

// acc[b][j] += x * y_b[j] over one segment (one row, one k block, one class of x), for the
// slots b that `Slots` names (bit b = class b). A slot left out is all zeros in this k block:
// its products are exactly zero. One instance per slot set keeps the accumulators in registers.
template <typename T, int Slots>
inline void segment_sums_to(const PackedRow<T> &row, int64_t begin, int64_t end, const T *panel,
                            T *acc) {
  constexpr int B = column_block<T>();
  constexpr int L = int(kVectorBytes / sizeof(T));  // lanes per vector
  constexpr int V = B / L;                          // vectors per class slot
  constexpr int S = kAccumulatorSets;
  Vec<T> r[S][3][V];
#pragma GCC unroll 3
  for (int b = 0; b < 3; ++b)
    if ((Slots >> b) & 1)
      for (int v = 0; v < V; ++v) {
        r[0][b][v] = load_vec(acc + b * B + v * L);
        for (int s = 1; s < S; ++s) r[s][b][v] = Vec<T>{};
      }
  const T *values = row.values.data();
  const uint16_t *offsets = row.offsets.data();  // k within the chunk: panel is the chunk's start
  int64_t t = begin;
  for (; t + S <= end; t += S)
#pragma GCC unroll 2
    for (int s = 0; s < S; ++s) {
      const T xv = values[t + s];
      const T *yp = panel + int64_t(offsets[t + s]) * kValueSlots * B;
#pragma GCC unroll 3
      for (int b = 0; b < 3; ++b)
        if ((Slots >> b) & 1)
          for (int v = 0; v < V; ++v) r[s][b][v] += xv * load_vec(yp + b * B + v * L);
    }
  for (; t < end; ++t) {
    const T xv = values[t];
    const T *yp = panel + int64_t(offsets[t]) * kValueSlots * B;
#pragma GCC unroll 3
    for (int b = 0; b < 3; ++b)
      if ((Slots >> b) & 1)
        for (int v = 0; v < V; ++v) r[0][b][v] += xv * load_vec(yp + b * B + v * L);
  }
#pragma GCC unroll 3
  for (int b = 0; b < 3; ++b)
    if ((Slots >> b) & 1)
      for (int v = 0; v < V; ++v) {
        for (int s = 1; s < S; ++s) r[0][b][v] += r[s][b][v];
        store_vec(acc + b * B + v * L, r[0][b][v]);
      }
}

template <typename T>
inline void segment_sums(const PackedRow<T> &row, int64_t begin, int64_t end, const T *panel,
                         int slots, T *acc) {
  switch (slots) {
  case 0: return;
  case 1: return segment_sums_to<T, 1>(row, begin, end, panel, acc);
  case 2: return segment_sums_to<T, 2>(row, begin, end, panel, acc);
  case 3: return segment_sums_to<T, 3>(row, begin, end, panel, acc);
  case 4: return segment_sums_to<T, 4>(row, begin, end, panel, acc);
  case 5: return segment_sums_to<T, 5>(row, begin, end, panel, acc);
  case 6: return segment_sums_to<T, 6>(row, begin, end, panel, acc);
  default: return segment_sums_to<T, 7>(row, begin, end, panel, acc);
  }
}

// A near-zero segment of exact zeros (post-ReLU rows) has only zero products.
template <typename T> inline bool all_zero(const T *values, int64_t begin, int64_t end) {
  bool nonzero = false;
  for (int64_t t = begin; t < end; ++t) nonzero |= values[t] != T(0);
  return !nonzero;
}

}  // namespace matmul_detail
}  // namespace nearzero
