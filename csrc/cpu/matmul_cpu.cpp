// Fused matmul classify: per output cell all nine counts and sums in one pass.
//
// For a row i of x every k belongs to exactly one class of x, so grouping the row's k by class
// leaves three multiply-adds per product (that class against the P, Z and N parts of y) instead
// of nine. y is packed per block of kBlock columns into [k][class][column] panels with the
// other classes' slots zeroed; counts come from class bit masks over k and popcount.
#include "cpu/matmul_cpu.h"
#include "common/classify_rule.h"
#include "common/parallel.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace nearzero {
namespace {

// Sums stay in T registers for at most this many products, then move to double: this bounds
// the float32 rounding error well inside SPEC §4 whatever the length of k.
constexpr int kFlushEvery = 128;

template <typename T> constexpr int column_block() { return sizeof(T) == 4 ? 32 : 16; }

inline int popcount64(uint64_t v) { return __builtin_popcountll(v); }

template <typename T> struct Panel {
  std::vector<T> values;       // [k][class][kBlock]
  std::vector<uint64_t> bits;  // [column][class][word]
  std::vector<uint8_t> column_complete;  // no NaN in the column: derived counts are exact
};

template <typename T> struct RowScratch {
  std::vector<T> values;        // x[i, k] grouped by class (P first, then Z, then N)
  std::vector<int32_t> columns; // the k of each value
  std::vector<uint64_t> bits;   // [class][word]
  int64_t bounds[4];
  bool complete;                // no NaN in the row
  bool finite;                  // no inf in the row (else the scalar path keeps 0*inf out)
};

template <typename T>
void pack_panel(const MatmulProblem<T> &p, const T *y, int64_t j0, int jn, int64_t words,
                Panel<T> &panel) {
  constexpr int B = column_block<T>();
  panel.values.assign(size_t(p.k) * 3 * B, T(0));
  panel.bits.assign(size_t(B) * 3 * words, 0);
  panel.column_complete.assign(B, 1);
  for (int64_t kk = 0; kk < p.k; ++kk) {
    const T *row = y + kk * p.y_row_stride + j0 * p.y_col_stride;
    T *slot = panel.values.data() + kk * 3 * B;
    const uint64_t bit = uint64_t(1) << (kk & 63);
    for (int j = 0; j < jn; ++j) {
      const T v = row[j * p.y_col_stride];
      const int c = classify_value(v, p.y_threshold);
      if (c == kNoClass) {
        panel.column_complete[j] = 0;
        continue;
      }
      slot[c * B + j] = v;
      panel.bits[(size_t(j) * 3 + c) * words + (kk >> 6)] |= bit;
    }
  }
}

template <typename T>
void prepare_row(const MatmulProblem<T> &p, const T *x_row, int64_t words, RowScratch<T> &row) {
  int64_t sizes[3] = {0, 0, 0};
  row.bits.assign(size_t(3) * words, 0);
  row.complete = true;
  row.finite = true;
  row.values.resize(size_t(p.k));
  row.columns.resize(size_t(p.k));
  for (int64_t kk = 0; kk < p.k; ++kk) {
    const T v = x_row[kk * p.x_col_stride];
    const int c = classify_value(v, p.x_threshold);
    if (c == kNoClass) {
      row.complete = false;
      continue;
    }
    if (std::isinf(v)) row.finite = false;
    ++sizes[c];
    row.bits[size_t(c) * words + (kk >> 6)] |= uint64_t(1) << (kk & 63);
  }
  row.bounds[0] = 0;
  for (int c = 0; c < 3; ++c) row.bounds[c + 1] = row.bounds[c] + sizes[c];
  int64_t fill[3] = {row.bounds[0], row.bounds[1], row.bounds[2]};
  for (int c = 0; c < 3; ++c) {
    const uint64_t *b = row.bits.data() + size_t(c) * words;
    for (int64_t w = 0; w < words; ++w) {
      for (uint64_t bits = b[w]; bits; bits &= bits - 1) {
        const int64_t kk = w * 64 + __builtin_ctzll(bits);
        row.values[fill[c]] = x_row[kk * p.x_col_stride];
        row.columns[fill[c]++] = int32_t(kk);
      }
    }
  }
}

// sums[j][pair] for the block's columns, three multiply-adds per product.
template <typename T>
void row_block_sums(const RowScratch<T> &row, const Panel<T> &panel, double (*sums)[9]) {
  constexpr int B = column_block<T>();
  for (int a = 0; a < 3; ++a) {
    double total[3][B] = {};
    T acc[3][B] = {};
    int pending = 0;
    for (int64_t t = row.bounds[a]; t < row.bounds[a + 1]; ++t) {
      const T xv = row.values[t];
      const T *yp = panel.values.data() + int64_t(row.columns[t]) * 3 * B;
#pragma GCC unroll 3
      for (int b = 0; b < 3; ++b) {
#pragma omp simd
        for (int j = 0; j < B; ++j) acc[b][j] += xv * yp[b * B + j];
      }
      if (++pending == kFlushEvery) {
        for (int b = 0; b < 3; ++b)
          for (int j = 0; j < B; ++j) {
            total[b][j] += double(acc[b][j]);
            acc[b][j] = T(0);
          }
        pending = 0;
      }
    }
    for (int b = 0; b < 3; ++b)
      for (int j = 0; j < B; ++j) sums[j][3 * a + b] = total[b][j] + double(acc[b][j]);
  }
}

// Scalar path for rows holding +-inf: products are taken class by class so that inf never
// meets the zeroed slots of other classes.
template <typename T>
void row_block_sums_exact(const MatmulProblem<T> &p, const T *x_row, const T *y, int64_t j0,
                          int jn, double (*sums)[9]) {
  for (int j = 0; j < jn; ++j) {
    for (int q = 0; q < 9; ++q) sums[j][q] = 0.0;
    for (int64_t kk = 0; kk < p.k; ++kk) {
      const T a = x_row[kk * p.x_col_stride];
      const T b = y[kk * p.y_row_stride + (j0 + j) * p.y_col_stride];
      const int ca = classify_value(a, p.x_threshold), cb = classify_value(b, p.y_threshold);
      if (ca != kNoClass && cb != kNoClass)
        sums[j][class_pair_index(ca, cb)] += double(a) * double(b);
    }
  }
}

template <typename T>
void row_block_counts(const RowScratch<T> &row, const Panel<T> &panel, int jn, int64_t words,
                      int64_t (*counts)[9]) {
  const int64_t row_size[3] = {row.bounds[1] - row.bounds[0], row.bounds[2] - row.bounds[1],
                               row.bounds[3] - row.bounds[2]};
  for (int j = 0; j < jn; ++j) {
    const uint64_t *yb = panel.bits.data() + size_t(j) * 3 * words;
    int64_t *c = counts[j];
    if (row.complete && panel.column_complete[j]) {
      // Four popcounts; the other five follow from row and column class totals.
      const uint64_t *xp = row.bits.data(), *xn = row.bits.data() + 2 * words;
      const uint64_t *yp = yb, *yz = yb + words, *yn = yb + 2 * words;
      int64_t pp = 0, pn = 0, np = 0, nn = 0, col_p = 0, col_z = 0, col_n = 0;
      for (int64_t w = 0; w < words; ++w) {
        pp += popcount64(xp[w] & yp[w]);
        pn += popcount64(xp[w] & yn[w]);
        np += popcount64(xn[w] & yp[w]);
        nn += popcount64(xn[w] & yn[w]);
        col_p += popcount64(yp[w]);
        col_z += popcount64(yz[w]);
        col_n += popcount64(yn[w]);
      }
      c[0] = pp;
      c[2] = pn;
      c[6] = np;
      c[8] = nn;
      c[1] = row_size[0] - pp - pn;
      c[7] = row_size[2] - np - nn;
      c[3] = col_p - pp - np;
      c[5] = col_n - pn - nn;
      c[4] = col_z - c[1] - c[7];
      continue;
    }
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) {
        const uint64_t *xa = row.bits.data() + size_t(a) * words, *ybb = yb + size_t(b) * words;
        int64_t total = 0;
        for (int64_t w = 0; w < words; ++w) total += popcount64(xa[w] & ybb[w]);
        c[3 * a + b] = total;
      }
  }
}

}  // namespace

template <typename T> void matmul_classify_cpu(const MatmulProblem<T> &p, const ClassifyOutput &out) {
  constexpr int B = column_block<T>();
  if (p.batches == 0 || p.n == 0 || p.m == 0) return;
  const int64_t words = (p.k + 63) / 64;
  const int64_t column_blocks = (p.m + B - 1) / B;
  // Enough tasks to keep every thread busy even for a single column block (matrix-vector).
  const int threads = max_threads();
  const int64_t blocks = p.batches * column_blocks;
  const int64_t row_chunks =
      std::min<int64_t>(p.n, std::max<int64_t>(1, (4 * threads + blocks - 1) / blocks));
  const int64_t tasks = blocks * row_chunks;

#pragma omp parallel
  {
    CellWriter<T> writer(out);
    Panel<T> panel;
    RowScratch<T> row;
    double sums[B][9];
    int64_t counts[B][9];
    int64_t packed_block = -1;
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t block = task / row_chunks, chunk = task % row_chunks;
      const int64_t batch = block / column_blocks, j0 = (block % column_blocks) * B;
      const int jn = int(std::min<int64_t>(B, p.m - j0));
      const T *x = p.x + p.x_offsets[batch];
      const T *y = p.y + p.y_offsets[batch];
      if (packed_block != block) {
        pack_panel(p, y, j0, jn, words, panel);
        packed_block = block;
      }
      int64_t i_begin, i_end;
      chunk_range(p.n, int(row_chunks), int(chunk), i_begin, i_end);
      for (int64_t i = i_begin; i < i_end; ++i) {
        const T *x_row = x + i * p.x_row_stride;
        prepare_row(p, x_row, words, row);
        if (row.finite)
          row_block_sums(row, panel, sums);
        else
          row_block_sums_exact(p, x_row, y, j0, jn, sums);
        row_block_counts(row, panel, jn, words, counts);
        const int64_t cell0 = (batch * p.n + i) * p.m + j0;
        for (int j = 0; j < jn; ++j) writer.emit(cell0 + j, counts[j], sums[j]);
      }
    }
#pragma omp critical(nearzero_merge)
    writer.merge_into();
  }
}

template void matmul_classify_cpu<float>(const MatmulProblem<float> &, const ClassifyOutput &);
template void matmul_classify_cpu<double>(const MatmulProblem<double> &, const ClassifyOutput &);

}  // namespace nearzero
