// AVX-512 sums of the fused matmul: one row of x against a masked column panel (values
// [k][column] and per-k class lane masks, see matmul_pack_cpu.h), with the accumulators in
// registers for a whole class of the row. Included by matmul_cpu.cpp at the AVX-512 level only.
//
// Why this shape: the slot layout of the lower levels reads one vector of y per multiply-add
// (three slots of which two are zero in every lane), so its loop is bound by loads as much as
// by multiply-adds and has to stay in L1 slices, saving and reloading the accumulators for each
// run of one class in one slice. Here a vector of y is loaded once and taken by up to three
// masked multiply-adds (vfmadd231ps with a merge mask, one per class of y): a third of the
// loads, so the loop is bound by the multiply-adds alone and can read y from L2 across the
// whole k chunk, with the accumulators of one class of the row in registers from start to end.
// Where the panel allows, the near-zero class of y takes no mask at all (see Form::kDerived).
#pragma once
#include "cpu/matmul_pack_cpu.h"

#include <immintrin.h>
#include <type_traits>

namespace nearzero {
namespace matmul_detail {

// The lane masks of one k and class, B bits, straight from memory (kmovd k, m32): vector v
// of the block takes bits [v * L, (v + 1) * L) (a shift of the mask register). Compilers load a
// mask through a general register (movzwl + kmovw, the mask move competing with the
// multiply-adds); one 32-bit load and a shift per two vectors measured 8% faster than a
// 16-bit load per vector.
inline __mmask32 load_masks(const uint32_t *m) {
  __mmask32 k;
  asm("kmovd %1, %0" : "=k"(k) : "m"(*m));
  return k;
}

// 512-bit vectors of T.
template <typename T> struct Wide;
template <> struct Wide<float> {
  using V = __m512;
  static V zero() { return _mm512_setzero_ps(); }
  static V broadcast(float v) { return _mm512_set1_ps(v); }
  static V load(const float *p) { return _mm512_load_ps(p); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V fma(V x, V y, V acc) { return _mm512_fmadd_ps(x, y, acc); }
  static V masked_fma(V x, V y, V acc, __mmask32 m) { return _mm512_mask3_fmadd_ps(x, y, acc, __mmask16(m)); }
  // The 16 lanes of v widened to double, in two halves.
  static __m512d low(V v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
  static __m512d high(V v) { return _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)); }
};
template <> struct Wide<double> {
  using V = __m512d;
  static V zero() { return _mm512_setzero_pd(); }
  static V broadcast(double v) { return _mm512_set1_pd(v); }
  static V load(const double *p) { return _mm512_load_pd(p); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V fma(V x, V y, V acc) { return _mm512_fmadd_pd(x, y, acc); }
  static V masked_fma(V x, V y, V acc, __mmask32 m) { return _mm512_mask3_fmadd_pd(x, y, acc, __mmask8(m)); }
};

// sums[b * B + j] += r[b] for the slots named, widened to double; for `Total` >= 0 that slot
// holds the total of all classes, and its sum is the total less the others' (in double).
template <typename T, int Slots, int Total, typename V>
inline void add_to(double *sums, const V (&r)[3]) {
  constexpr int B = column_block<T>();
  auto add = [&](double *out, __m512d (&part)[3]) {
    if (Total >= 0)
      for (int b = 0; b < 3; ++b)
        if (b != Total && ((Slots >> b) & 1)) part[Total] = _mm512_sub_pd(part[Total], part[b]);
    for (int b = 0; b < 3; ++b)
      if ((Slots >> b) & 1)
        _mm512_storeu_pd(out + b * B, _mm512_add_pd(_mm512_loadu_pd(out + b * B), part[b]));
  };
  if constexpr (std::is_same<T, float>::value) {
    __m512d low[3], high[3];
    for (int b = 0; b < 3; ++b) {
      low[b] = (Slots >> b) & 1 ? Wide<float>::low(r[b]) : _mm512_setzero_pd();
      high[b] = (Slots >> b) & 1 ? Wide<float>::high(r[b]) : _mm512_setzero_pd();
    }
    add(sums, low);
    add(sums + 8, high);
  } else {
    __m512d part[3] = {r[0], r[1], r[2]};
    add(sums, part);
  }
}

// How the products of one class of x reach the sums of each class of y.
enum class Form {
  kPlain,    // one class of y only, every other panel entry an exact zero: the plain product
  kMasked,   // one masked multiply-add per class of y
  kDerived,  // near-zero y takes the plain product (all classes), the others are masked, and
             // its sum is that total less theirs; for panels without NaN or inf only (a NaN
             // lane belongs to no class, inf - inf is NaN). The three T partials' rounding
             // errors add: at most 2 * 64 * 2^-24 (7.6e-6) of the products' Σ|x*y| with 128
             // products per flush, inside SPEC §4's 1e-5.
};

// sums[b * B + j] += Σ_t values[t] * y[offsets[t]][j] over the columns j of class b, for the
// classes b that `Slots` names (bit b). The T accumulators move to the double sums every
// `flush_every` products, which bounds their rounding error (SPEC §4); two accumulator sets
// take alternate products, so that the multiply-add chains are independent enough for two
// FMA units (Intel; Zen 4 needs only one set).
template <typename T, int Slots, Form F>
void class_sums_512(const T *values, const uint16_t *offsets, int64_t n, const T *panel,
                    const uint32_t *masks, int64_t flush_every, double *sums) {
  using W = Wide<T>;
  using V = typename W::V;
  constexpr int B = column_block<T>(), L = mask_lanes<T>(), NV = mask_vectors<T>();
  static_assert(NV == 2, "a mask load serves two vectors");
  static_assert(F != Form::kPlain || Slots == 1 || Slots == 2 || Slots == 4, "plain: one class");
  static_assert(F != Form::kDerived || (Slots & 2), "derived: near-zero y present");
  constexpr int Total = F == Form::kDerived ? kNearZero : -1;  // slot holding the total
  for (int64_t s = 0; s < n; s += flush_every) {
    const int64_t e = std::min(n, s + flush_every);
    V acc[2][3][NV];
    for (int u = 0; u < 2; ++u)
      for (int b = 0; b < 3; ++b)
        for (int v = 0; v < NV; ++v) acc[u][b][v] = W::zero();
    auto step = [&](V (&a)[3][NV], int64_t t) __attribute__((always_inline)) {
      const V x = W::broadcast(values[t]);
      const int64_t k = offsets[t];
      const V y[NV] = {W::load(panel + k * B), W::load(panel + k * B + L)};
#pragma GCC unroll 3
      for (int b = 0; b < 3; ++b) {
        if (!((Slots >> b) & 1)) continue;
        if (F == Form::kPlain || b == Total) {
          for (int v = 0; v < NV; ++v) a[b][v] = W::fma(x, y[v], a[b][v]);
          continue;
        }
        const __mmask32 m = load_masks(masks + k * 3 + b);
        a[b][0] = W::masked_fma(x, y[0], a[b][0], m);
        a[b][1] = W::masked_fma(x, y[1], a[b][1], _kshiftri_mask32(m, L));
      }
    };
    int64_t t = s;
    for (; t + 2 <= e; t += 2) {
      step(acc[0], t);
      step(acc[1], t + 1);
    }
    if (t < e) step(acc[0], t);
    // Into the double sums: the total's share for near-zero y is what the others leave.
    for (int v = 0; v < NV; ++v) {
      V r[3];
      for (int b = 0; b < 3; ++b) r[b] = W::add(acc[0][b][v], acc[1][b][v]);
      add_to<T, Slots, Total>(sums + v * L, r);
    }
  }
}

// class_sums_512 for the slots of this chunk's panel (bit b when class b holds a nonzero value
// somewhere in it), in the cheapest form the panel allows.
template <typename T>
void class_sums(const T *values, const uint16_t *offsets, int64_t n, const ColumnPanel<T> &cols,
                int slots, Form form, int64_t flush_every, double *sums) {
  const T *panel = cols.values.data();
  const uint32_t *masks = cols.masks.data();
#define NEARZERO_CLASS_SUMS(S, F) \
  return class_sums_512<T, S, Form::F>(values, offsets, n, panel, masks, flush_every, sums)
  if (form == Form::kPlain) switch (slots) {
    case 1: NEARZERO_CLASS_SUMS(1, kPlain);
    case 2: NEARZERO_CLASS_SUMS(2, kPlain);
    case 4: NEARZERO_CLASS_SUMS(4, kPlain);
    default: break;
    }
  if (form == Form::kDerived) switch (slots) {
    case 3: NEARZERO_CLASS_SUMS(3, kDerived);
    case 6: NEARZERO_CLASS_SUMS(6, kDerived);
    case 7: NEARZERO_CLASS_SUMS(7, kDerived);
    default: break;
    }
  switch (slots) {
  case 0: return;
  case 1: NEARZERO_CLASS_SUMS(1, kMasked);
  case 2: NEARZERO_CLASS_SUMS(2, kMasked);
  case 3: NEARZERO_CLASS_SUMS(3, kMasked);
  case 4: NEARZERO_CLASS_SUMS(4, kMasked);
  case 5: NEARZERO_CLASS_SUMS(5, kMasked);
  case 6: NEARZERO_CLASS_SUMS(6, kMasked);
  default: NEARZERO_CLASS_SUMS(7, kMasked);
  }
#undef NEARZERO_CLASS_SUMS
}

// The form for a panel: plain where one class alone holds nonzero values and there is no NaN,
// derived where near-zero y has nonzero values and there is no NaN or inf, else masked.
template <typename T> Form panel_form(const ColumnPanel<T> &cols, int live) {
  const int slots = live & 7;
  if (!cols.complete) return Form::kMasked;
  if (slots == 1 || slots == 2 || slots == 4) return Form::kPlain;
  if ((slots & 2) && !(live & kSlotInfinite)) return Form::kDerived;
  return Form::kMasked;
}

}  // namespace matmul_detail
}  // namespace nearzero
