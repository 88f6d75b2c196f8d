// Fused matmul classify: per output cell all nine counts and sums in one pass.
//
// For a row i of x every k belongs to exactly one class of x, so grouping the row's k by class
// leaves three multiply-adds per product (that class against the P, Z and N parts of y) instead
// of nine. y is packed in L1-sized panels of kBlockK x B values split into per-class slots;
// counts come from class bit masks over k and popcount.
#include "cpu/matmul_cpu.h"
#include "common/parallel.h"
#include "cpu/matmul_pack_cpu.h"

#include <algorithm>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace nearzero {
namespace {
using namespace matmul_detail;

// A T partial sum takes at most this many products before it moves to double: this keeps each
// class sum within SPEC §4's 1e-5 relative bound however long k is.
constexpr int64_t kFlushEvery = 128;
static_assert(kBlockK <= kFlushEvery, "one segment must fit between two flushes");
// Rows sharing one pass over the value panels: their partial sums stay in L2.
constexpr int64_t kRowsPerPass = 128;

// Register vectors of the CPU level's width (GCC/Clang vector extensions): fixed-size
// accumulators that the compiler keeps in registers, where plain arrays are copied through the
// stack. 64 bytes where AVX-512 is on; there a second set of accumulators takes every other
// product, so that twice as many independent multiply-add chains keep both FMA units busy.
#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
constexpr int kAccumulatorSets = 2;
#else
constexpr int kVectorBytes = 32;
constexpr int kAccumulatorSets = 1;
#endif
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
  const uint16_t *offsets = row.offsets.data();
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

// Scalar path for rows holding +-inf: products are taken pair by pair so that inf never meets
// the zeroed slots of other classes.
template <typename T>
void exact_row_sums(const MatmulProblem<T> &p, const T *x_row, const T *y, int64_t j0, int jn,
                    double *sums) {
  constexpr int B = column_block<T>();
  for (int j = 0; j < jn; ++j) {
    for (int q = 0; q < 9; ++q) sums[q * B + j] = 0.0;
    for (int64_t kk = 0; kk < p.k; ++kk) {
      const T a = x_row[kk * p.x_col_stride];
      const T b = y[kk * p.y_row_stride + (j0 + j) * p.y_col_stride];
      const int ca = classify_value(a, p.x_threshold), cb = classify_value(b, p.y_threshold);
      if (ca != kNoClass && cb != kNoClass)
        sums[class_pair_index(ca, cb) * B + j] += double(a) * double(b);
    }
  }
}

#if defined(__AVX512BW__)
// out[j] += popcount(x[w] & y[w * B + j]) with 512-bit vectors, eight columns to a vector:
// one vpopcntq per eight words. Only where the CPU has AVX512_VPOPCNTDQ (Ice Lake, Zen 4 and
// later), which x86-64-v4 does not include: checked at run time; other AVX-512 CPUs
// (Skylake-X) take the AVX2 nibble lookup below.
template <int B>
__attribute__((target("avx512vpopcntdq"))) void add_matches_vpopcnt(const uint64_t *x,
                                                                    const uint64_t *y,
                                                                    int64_t words, int64_t *out) {
  constexpr int G = B / 8;
  __m512i total[G];
  for (int g = 0; g < G; ++g) total[g] = _mm512_setzero_si512();
  for (int64_t w = 0; w < words; ++w) {
    const __m512i xw = _mm512_set1_epi64(int64_t(x[w]));
    for (int g = 0; g < G; ++g)
      total[g] = _mm512_add_epi64(
          total[g], _mm512_popcnt_epi64(_mm512_and_si512(xw, _mm512_loadu_si512(y + w * B + 8 * g))));
  }
  for (int g = 0; g < G; ++g)
    _mm512_storeu_si512(out + 8 * g, _mm512_add_epi64(_mm512_loadu_si512(out + 8 * g), total[g]));
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
  if (cpu_has_vpopcntdq()) return add_matches_vpopcnt<B>(x, y, words, out);
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
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) {
      const bool derived = complete && (a == kNearZero || b == kNearZero);
      if (derived || row.class_totals[a] == 0 || !cols.present[b]) continue;
      add_matches<B>(row.bits.data() + size_t(a) * words, cols.bits.data() + size_t(b) * words * B,
                     words, counts + class_pair_index(a, b) * B);
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

// Workspace of one thread.
template <typename T> struct Workspace {
  std::vector<PackedRow<T>> rows;
  ColumnPanel<T> columns;
  AlignedVector<T> partial;     // [row][pair][column] T partial sums
  AlignedVector<double> total;  // [row][pair][column]
  std::vector<int64_t> pending; // [row][class of x]: products in `partial` since the last flush
  std::vector<uint8_t> flushed; // [row][class of x]: `total` holds a value (else it is stale)
  std::vector<uint8_t> touched; // [row][class of x]: slots added to since the last flush

  // Moves the partial sums of (row, class of x) `ra` into its double totals: every slot the
  // first time (that writes the totals), afterwards only the slots added to since.
  template <int B> void flush(size_t ra) {
    double *sums = total.data() + ra * 3 * B;
    T *acc = partial.data() + ra * 3 * B;
    const bool add = flushed[ra];
    const int slots = add ? touched[ra] : 7;
    for (int b = 0; b < 3; ++b) {
      if (!((slots >> b) & 1)) continue;
      for (int j = b * B; j < (b + 1) * B; ++j) {
        sums[j] = (add ? sums[j] : 0.0) + double(acc[j]);
        acc[j] = T(0);
      }
    }
    flushed[ra] = 1;
    touched[ra] = 0;
    pending[ra] = 0;
  }
};

// Sums of rows [first, first + rn) of the task against columns [j0, j0 + jn).
template <typename T>
void rows_block_sums(const MatmulProblem<T> &p, size_t first, int64_t rn, Workspace<T> &ws) {
  constexpr int B = column_block<T>();
  const int64_t blocks = (p.k + kBlockK - 1) / kBlockK;
  ws.partial.assign(size_t(rn) * 9 * B, T(0));
  ws.total.resize(size_t(rn) * 9 * B);  // written by the first flush: no need to clear it
  ws.pending.assign(size_t(rn) * 3, 0);
  ws.flushed.assign(size_t(rn) * 3, 0);
  ws.touched.assign(size_t(rn) * 3, 0);
  for (int64_t kb = 0; kb < blocks; ++kb) {
    const T *panel = ws.columns.values.data() + kb * kBlockK * kValueSlots * B;
    const int live = ws.columns.live[size_t(kb)];
    for (int64_t r = 0; r < rn; ++r) {
      const PackedRow<T> &row = ws.rows[first + size_t(r)];
      if (!row.finite) continue;
      for (int a = 0; a < 3; ++a) {
        const int64_t begin = row.bounds[size_t(kb * 3 + a)], end = row.bounds[size_t(kb * 3 + a + 1)];
        if (begin == end) continue;
        const size_t ra = size_t(r) * 3 + size_t(a);
        if (ws.pending[ra] + (end - begin) > kFlushEvery)  // it would overfill the partials
          ws.template flush<B>(ra);
        ws.pending[ra] += end - begin;
        // Exact-zero near-zero values meet no inf here (0 * inf is NaN): their products are 0.
        const bool zeros = a == kNearZero && !(live & kSlotInfinite) &&
                           all_zero(row.values.data(), begin, end);
        const int slots = zeros ? 0 : live & 7;
        segment_sums(row, begin, end, panel, slots, ws.partial.data() + ra * 3 * B);
        ws.touched[ra] |= uint8_t(slots);
      }
    }
  }
  for (size_t ra = 0; ra < ws.flushed.size(); ++ra) ws.template flush<B>(ra);
}

}  // namespace

template <typename T>
void matmul_classify_cpu(const MatmulProblem<T> &p, const ClassifyOutput &out) {
  constexpr int B = column_block<T>();
  if (p.batches == 0 || p.n == 0 || p.m == 0) return;
  const int64_t words = (p.k + 63) / 64;
  const int64_t column_blocks = (p.m + B - 1) / B;
  // A task is (batch, chunk of rows, group of column blocks). Rows are packed once per task and
  // reused for every column block, so chunks are as large as the thread count allows; column
  // groups split the work when there are too few rows (vector-matrix products).
  const int64_t threads = max_threads();
  const int64_t row_chunks = std::min<int64_t>(
      p.n, std::max<int64_t>({1, (threads + p.batches - 1) / p.batches, (p.n + 1023) / 1024}));
  const int64_t column_groups = std::min<int64_t>(
      column_blocks,
      std::max<int64_t>(1, (threads + p.batches * row_chunks - 1) / (p.batches * row_chunks)));
  const int64_t tasks = p.batches * row_chunks * column_groups;

#pragma omp parallel
  {
    CellWriter<T> writer(out);
    Workspace<T> ws;
    double exact[9 * B];
    int64_t counts[9 * B];
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t group = task % column_groups;
      const int64_t chunk = (task / column_groups) % row_chunks;
      const int64_t batch = task / (column_groups * row_chunks);
      const T *x = p.x + p.x_offsets[batch];
      const T *y = p.y + p.y_offsets[batch];
      int64_t i_begin, i_end, b_begin, b_end;
      chunk_range(p.n, int(row_chunks), int(chunk), i_begin, i_end);
      chunk_range(column_blocks, int(column_groups), int(group), b_begin, b_end);
      if (ws.rows.size() < size_t(i_end - i_begin)) ws.rows.resize(size_t(i_end - i_begin));
      for (int64_t i = i_begin; i < i_end; ++i)
        pack_row(p, x + i * p.x_row_stride, words, ws.rows[size_t(i - i_begin)]);
      for (int64_t cb = b_begin; cb < b_end; ++cb) {
        const int64_t j0 = cb * B;
        const int jn = int(std::min<int64_t>(B, p.m - j0));
        pack_columns(p, y, j0, jn, words, ws.columns);
        for (int64_t first = i_begin; first < i_end; first += kRowsPerPass) {
          const int64_t rn = std::min(kRowsPerPass, i_end - first);
          rows_block_sums(p, size_t(first - i_begin), rn, ws);
          for (int64_t r = 0; r < rn; ++r) {
            const int64_t i = first + r;
            const PackedRow<T> &row = ws.rows[size_t(i - i_begin)];
            const double *sums = ws.total.data() + size_t(r) * 9 * B;
            if (!row.finite) {
              exact_row_sums(p, x + i * p.x_row_stride, y, j0, jn, exact);
              sums = exact;
            }
            row_counts(row, ws.columns, jn, words, counts);
            writer.emit_run((batch * p.n + i) * p.m + j0, jn, counts, sums, B);
          }
        }
      }
    }
#pragma omp critical(nearzero_merge)
    writer.merge_into();
  }
}

template void matmul_classify_cpu<float>(const MatmulProblem<float> &, const ClassifyOutput &);
template void matmul_classify_cpu<double>(const MatmulProblem<double> &, const ClassifyOutput &);

}  // namespace nearzero
