// Fused matmul classify: per output cell all nine counts and sums in one pass.
//
// For a row i of x every k belongs to exactly one class of x, so grouping the row's k by class
// leaves three multiply-adds per product (that class against the P, Z and N parts of y) instead
// of nine. y is packed in panels of B columns: at the AVX-512 level with class lane masks
// (matmul_rows_avx512.h), below it split into per-class slots read in L1-sized slices; counts
// come from class bit masks over k and popcount.
#include "cpu/matmul_cpu.h"
#include "cpu/matmul_counts_cpu.h"
#include "cpu/parallel.h"
#include "cpu/matmul_pack_cpu.h"
#if defined(__AVX512F__)
#include "cpu/matmul_rows_avx512.h"
#include "cpu/matmul_write_avx512.h"
#else
#include "cpu/matmul_slots_cpu.h"
#endif

#include <algorithm>
#include <type_traits>
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
// k is taken in chunks of this many (a multiple of kBlockK): a column panel holds one chunk, so
// working memory does not grow with k. A masked panel is read from L2 by every row: 4096 x B
// values (512 KiB for float) fit there. A slotted one is read in L1 slices (8192 x 3 x B: 3 MiB).
constexpr int64_t kChunkK = kMaskedPanel ? 4096 : 8192;
static_assert(kChunkK % kBlockK == 0, "k chunks must be whole k blocks");
// Packed rows and accumulators of one task stay within this many bytes (fewer rows per task).
constexpr int64_t kRowBytes = int64_t(16) << 20;
// With fewer rows than this per thread, a long k is split between threads instead of rows.
constexpr int64_t kMinRowsPerThread = 64;
// k blocks per slice of a plain panel (AVX-512 level): 256 x B values, 32 KiB for float.
constexpr int64_t kPlainSliceWords = 4;
// Full results of at least this many bytes are written with streaming stores (AVX-512 level).
constexpr int64_t kStreamBytes = int64_t(16) << 20;
// Largest buffer of per-split cell sums (all threads' splits of a split-k product).
constexpr int64_t kSplitBytes = int64_t(256) << 20;

// Scalar path for rows holding +-inf: products are taken pair by pair so that inf never meets
// the zeroed slots of other classes. Adds into `sums` ([pair][column], stride B).
template <typename T>
void exact_row_sums(const MatmulProblem<T> &p, const T *x_row, const T *y, int64_t j0, int jn,
                    double *sums) {
  constexpr int B = column_block<T>();
  for (int j = 0; j < jn; ++j) {
    for (int64_t kk = 0; kk < p.k; ++kk) {
      const T a = x_row[kk * p.x_col_stride];
      const T b = y[kk * p.y_row_stride + (j0 + j) * p.y_col_stride];
      const int ca = classify_value(a, p.x_threshold), cb = classify_value(b, p.y_threshold);
      if (ca != kNoClass && cb != kNoClass)
        sums[class_pair_index(ca, cb) * B + j] += double(a) * double(b);
    }
  }
}

// Workspace of one thread. With one k chunk per task the accumulators hold one pass of
// kRowsPerPass rows (reused pass after pass, in L2); with several they hold every row of the
// task, to carry over from one k chunk to the next.
template <typename T> struct Workspace {
  std::vector<PackedRow<T>> rows; // the task's rows, packed for the current k chunk
  ColumnPanel<T> columns;         // one column block, packed for the current k chunk
  AlignedVector<T> partial;       // [row][pair][column] T partial sums
  AlignedVector<double> total;    // [row][pair][column]
  std::vector<int64_t> counts;    // [row][pair][column]: counts of the k chunks so far
  std::vector<int64_t> pending;   // [row][class of x]: products in `partial` since the last flush
  std::vector<uint8_t> flushed;   // [row][class of x]: `total` holds a value (else it is stale)
  std::vector<uint8_t> touched;   // [row][class of x]: slots added to since the last flush

  // Clears the accumulators of `rows` rows for a new column block (`counts` only for a task
  // of several k chunks).
  template <int B> void start(int64_t rows, bool chunked) {
    resize_or_throw(total, size_t(rows) * 9 * B, "matmul partial sums");  // first flush writes it
    if (chunked) resize_or_throw(counts, size_t(rows) * 9 * B, "matmul partial counts");
    if (kMaskedPanel) {  // the row kernel adds to the totals directly
      if (chunked) std::fill(total.begin(), total.end(), 0.0);  // else zeroed row by row, in L1
      return;
    }
    partial.assign(size_t(rows) * 9 * B, T(0));
    pending.assign(size_t(rows) * 3, 0);
    flushed.assign(size_t(rows) * 3, 0);
    touched.assign(size_t(rows) * 3, 0);
  }

  // Moves the partial sums of (row, class of x) `ra` into its double totals: every slot the
  // first time (that writes the totals), afterwards only the slots added to since.
  template <int B> void flush(size_t ra) {
    if (kMaskedPanel) return;  // nothing held back: the row kernel adds to the totals directly
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

#if defined(__AVX512F__)
// The AVX-512 form of rows_block_sums: each row's classes in turn against the masked panel,
// straight into the double totals (set to zero first where `fresh`). A masked panel is read once
// per three multiply-adds, from L2, over the whole chunk. A plain one (one class of y, no masks)
// is read once per multiply-add, and from L2 that bounds the loop: there the rows go through it
// in slices of kPlainSliceWords k blocks (32 KiB of float y, in L1), 25% faster.
template <typename T>
void rows_block_sums_masked(size_t first, int64_t rn, size_t acc_first, bool fresh,
                            Workspace<T> &ws) {
  constexpr int B = column_block<T>();
  const ColumnPanel<T> &cols = ws.columns;
  int live = 0;
  for (uint8_t l : cols.live) live |= l;
  const int slots = live & 7;
  const Form form = panel_form(cols, live);
  const int64_t words = int64_t(cols.live.size());
  if (fresh)
    for (int64_t r = 0; r < rn; ++r) {
      double *sums = ws.total.data() + (acc_first + size_t(r)) * 9 * B;
      std::fill(sums, sums + 9 * B, 0.0);
    }
  const int64_t slice = form == Form::kPlain ? kPlainSliceWords : words;
  for (int64_t w0 = 0; w0 < words; w0 += slice) {
    const int64_t w1 = std::min(words, w0 + slice);
    for (int64_t r = 0; r < rn; ++r) {
      const PackedRow<T> &row = ws.rows[first + size_t(r)];
      if (r + 1 < rn) {  // the next row's values, offsets and runs: each row is a new stream
        const PackedRow<T> &next = ws.rows[first + size_t(r) + 1];
        __builtin_prefetch(next.values.data() + next.start(0, w0));
        __builtin_prefetch(next.offsets.data() + next.start(0, w0));
        __builtin_prefetch(next.bounds.data());
      }
      if (!row.finite) continue;
      double *sums = ws.total.data() + (acc_first + size_t(r)) * 9 * B;
      for (int a = 0; a < 3; ++a) {
        const int64_t begin = row.start(a, w0), end = row.stop(a, w1 - 1);
        // Exact-zero near-zero values meet no inf here (0 * inf is NaN): their products are 0.
        if (begin == end || (a == kNearZero && row.zero_near && !(live & kSlotInfinite))) continue;
        class_sums(row.values.data() + begin, row.offsets.data() + begin, end - begin, cols,
                   slots, form, kFlushEvery, sums + a * 3 * B);
      }
    }
  }
}
#else
// Sums of rows [first, first + rn) of the task against the packed columns, over one k chunk
// (`p` describes the chunk), added to accumulators [acc_first, acc_first + rn). Not inlined into
// the task driver: there the register pressure spills the inner loop's pointers (5% slower).
template <typename T>
__attribute__((noinline)) void rows_block_sums(const MatmulProblem<T> &p, size_t first, int64_t rn, size_t acc_first,
                     Workspace<T> &ws) {
  constexpr int B = column_block<T>();
  const int64_t blocks = (p.k + kBlockK - 1) / kBlockK;
  for (int64_t kb = 0; kb < blocks; ++kb) {
    const T *panel = ws.columns.values.data();
    const int live = ws.columns.live[size_t(kb)];
    for (int64_t r = 0; r < rn; ++r) {
      const PackedRow<T> &row = ws.rows[first + size_t(r)];
      if (!row.finite) continue;
      for (int a = 0; a < 3; ++a) {
        const int64_t begin = row.start(a, kb), end = row.stop(a, kb);
        if (begin == end) continue;
        const size_t ra = (acc_first + size_t(r)) * 3 + size_t(a);
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
}
#endif

// Per thread: the workspace, the result writer and one row's counts of one k chunk.
template <typename T> struct MatmulThread {
  Workspace<T> ws;
  CellWriter<T> writer;
  int64_t counts[9 * column_block<T>()];
};

// How a problem is cut into tasks: (batch, chunk of rows, group of column blocks, range of k
// chunks). Rows are packed once per task and k chunk and reused for every column block, so row
// chunks are as large as the thread count and kRowBytes allow; column groups split the work
// when there are too few rows (vector-matrix products); a long k with few rows (dot products)
// is split into k ranges whose sums are added in order afterwards.
struct MatmulTasks {
  int64_t k_chunks, row_chunks, column_blocks, column_groups, base, splits;
};

template <typename T> MatmulTasks plan_tasks(const MatmulProblem<T> &p) {
  constexpr int B = column_block<T>();
  MatmulTasks t;
  const int64_t threads = max_threads();
  t.k_chunks = std::max<int64_t>(1, (p.k + kChunkK - 1) / kChunkK);  // k = 0: one empty chunk
  t.column_blocks = (p.m + B - 1) / B;
  const int64_t chunk_k = std::min(p.k, kChunkK);
  const int64_t row_bytes = int64_t(sizeof(T) + 3) * chunk_k + 9 * B * int64_t(sizeof(T) + 24);
  const int64_t rows_fit = std::max<int64_t>(1, kRowBytes / row_bytes);
  const int64_t spread = (threads + p.batches - 1) / p.batches;
  // Few rows against a long k: spreading rows would repack the same columns in every task.
  const bool split_k = t.k_chunks > 1 && p.n < kMinRowsPerThread * spread;
  t.row_chunks = std::min<int64_t>(
      p.n, std::max<int64_t>({1, split_k ? 1 : spread, (p.n + 1023) / 1024,
                              (p.n + rows_fit - 1) / rows_fit}));
  t.column_groups = std::min<int64_t>(
      t.column_blocks,
      std::max<int64_t>(1, (threads + p.batches * t.row_chunks - 1) / (p.batches * t.row_chunks)));
  t.base = p.batches * t.row_chunks * t.column_groups;
  t.splits = 1;
  const int64_t cells = p.batches * p.n * p.m;
  if (split_k && t.base < threads && cells * 9 * 16 * threads <= kSplitBytes)
    t.splits = std::min(t.k_chunks, (threads + t.base - 1) / t.base);
  return t;
}

}  // namespace

template <typename T>
void matmul_classify_cpu(const MatmulProblem<T> &p, const ClassifyOutput &out) {
  constexpr int B = column_block<T>();
  if (p.batches == 0 || p.n == 0 || p.m == 0) return;
  const MatmulTasks plan = plan_tasks(p);
  const int64_t cells = p.batches * p.n * p.m;
  // Split k: counts and sums of every k range and cell, [split][cell][pair].
  std::vector<double> split_sums;
  std::vector<int64_t> split_counts;
  if (plan.splits > 1) {
    resize_or_throw(split_sums, size_t(plan.splits * cells * 9), "matmul split sums");
    resize_or_throw(split_counts, size_t(plan.splits * cells * 9), "matmul split counts");
  }
#if defined(__AVX512F__)
  // Streaming stores where the full result is larger than the caches could keep anyway.
  const bool stream = out.mode == ReduceMode::kNone && cells * 9 * (4 + int64_t(sizeof(T))) >= kStreamBytes;
#endif
  ParallelRun run;
  run.tasks(
      plan.base * plan.splits, [&] { return MatmulThread<T>{{}, CellWriter<T>(out), {}}; },
      [&](MatmulThread<T> &thread, int64_t task) {
        Workspace<T> &ws = thread.ws;
        const int64_t split = task % plan.splits, base = task / plan.splits;
        const int64_t group = base % plan.column_groups;
        const int64_t chunk = (base / plan.column_groups) % plan.row_chunks;
        const int64_t batch = base / (plan.column_groups * plan.row_chunks);
        const T *x = p.x + p.x_offsets[batch];
        const T *y = p.y + p.y_offsets[batch];
        int64_t i_begin, i_end, b_begin, b_end, c_begin, c_end;
        chunk_range(p.n, plan.row_chunks, chunk, i_begin, i_end);
        chunk_range(plan.column_blocks, plan.column_groups, group, b_begin, b_end);
        chunk_range(plan.k_chunks, plan.splits, split, c_begin, c_end);
        const int64_t rows = i_end - i_begin;
        if (ws.rows.size() < size_t(rows)) ws.rows.resize(size_t(rows));
        for (int64_t cb = b_begin; cb < b_end; ++cb) {
          const int64_t j0 = cb * B;
          const int jn = int(std::min<int64_t>(B, p.m - j0));
          const bool chunked = c_end - c_begin > 1;
          if (chunked) ws.template start<B>(rows, true);
          for (int64_t c = c_begin; c < c_end; ++c) {
            MatmulProblem<T> sub = p;  // the k chunk [k0, k0 + sub.k)
            const int64_t k0 = c * kChunkK;
            sub.k = std::min(kChunkK, p.k - k0);
            const int64_t words = (sub.k + 63) / 64;
            const T *xc = x + k0 * p.x_col_stride, *yc = y + k0 * p.y_row_stride;
            // With one k chunk, rows packed for the first column block serve them all.
            const bool repack = plan.k_chunks > 1 || cb == b_begin;
            pack_columns(sub, yc, j0, jn, words, ws.columns);
            for (int64_t first = 0; first < rows; first += kRowsPerPass) {
              run.checkpoint();
              const int64_t rn = std::min(kRowsPerPass, rows - first);
              if (!chunked) ws.template start<B>(rn, false);
              const int64_t acc0 = chunked ? first : 0;  // accumulator of the pass's first row
              if (repack)
                for (int64_t r = first; r < first + rn; ++r)
                  pack_row(sub, xc + (i_begin + r) * p.x_row_stride, words, ws.rows[size_t(r)]);
#if defined(__AVX512F__)
              rows_block_sums_masked(size_t(first), rn, size_t(acc0), !chunked || c == c_begin, ws);
#else
              rows_block_sums(sub, size_t(first), rn, size_t(acc0), ws);
#endif
              for (int64_t r = first; r < first + rn; ++r) {
                const PackedRow<T> &row = ws.rows[size_t(r)];
                const size_t acc = size_t(acc0 + r - first);
                if (!row.finite) {
                  for (int a = 0; a < 3; ++a) ws.template flush<B>(acc * 3 + size_t(a));
                  exact_row_sums(sub, xc + (i_begin + r) * p.x_row_stride, yc, j0, jn,
                                 ws.total.data() + acc * 9 * B);
                }
                // One k chunk: the counts go straight to the result; several: add up per row.
                int64_t *counts = chunked ? ws.counts.data() + acc * 9 * B : thread.counts;
                row_counts(row, ws.columns, jn, words, c == c_begin ? counts : thread.counts);
                if (c != c_begin)
                  for (int q = 0; q < 9 * B; ++q) counts[q] += thread.counts[q];
                if (c + 1 < c_end) continue;
                // The row's last k chunk: its results, while they are still in cache.
                for (int a = 0; a < 3; ++a) ws.template flush<B>(acc * 3 + size_t(a));
                const int64_t cell0 = (batch * p.n + i_begin + r) * p.m + j0;
                const double *sums = ws.total.data() + acc * 9 * B;
                if (plan.splits == 1) {
#if defined(__AVX512F__)
                  if (stream && stream_row<T>(out, cell0, jn, counts, sums)) continue;
#endif
                  thread.writer.emit_run(cell0, jn, counts, sums, B);
                  continue;
                }
                const size_t at = size_t((split * cells + cell0) * 9);
                for (int j = 0; j < jn; ++j)
                  for (int q = 0; q < 9; ++q) {
                    split_counts[at + size_t(j * 9 + q)] = counts[q * B + j];
                    split_sums[at + size_t(j * 9 + q)] = sums[q * B + j];
                  }
              }
            }
          }
        }
      },
      [&](MatmulThread<T> &thread) {
#if defined(__AVX512F__)
        _mm_sfence();  // this thread's streaming stores are visible before the result is read
#endif
        thread.writer.merge_into();
      });
  if (plan.splits > 1) {  // each cell's k ranges, added in order
    run.tasks(
        cells, [&] { return CellWriter<T>(out); },
        [&](CellWriter<T> &writer, int64_t cell) {
          int64_t counts[9] = {};
          double sums[9] = {};
          for (int64_t s = 0; s < plan.splits; ++s)
            for (int q = 0; q < 9; ++q) {
              counts[q] += split_counts[size_t((s * cells + cell) * 9 + q)];
              sums[q] += split_sums[size_t((s * cells + cell) * 9 + q)];
            }
          writer.emit(cell, counts, sums);
        },
        [&](CellWriter<T> &writer) { writer.merge_into(); });
  }
  run.finish();
}

template void matmul_classify_cpu<float>(const MatmulProblem<float> &, const ClassifyOutput &);
template void matmul_classify_cpu<double>(const MatmulProblem<double> &, const ClassifyOutput &);

}  // namespace nearzero
