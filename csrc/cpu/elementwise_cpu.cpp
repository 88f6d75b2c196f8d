// Elementwise classify kernels: one pass over the (broadcast) cells in row-major order,
// parallel over runs of consecutive cells, each read and written in chunks that may span rows.
#include "cpu/elementwise_cpu.h"
#include "common/classify_rule.h"
#include "cpu/parallel.h"

#include <algorithm>

namespace nearzero {
namespace {

// Cells per task: long enough to amortise its hand-out, short enough for interrupt checks.
constexpr int64_t kTaskCells = 1 << 16;
// Cells per chunk: a chunk's values, classes and pair-major results stay in L1.
constexpr int kChunk = 256;

// Walks the rows (all dims but the last) of one strided input in row-major order from a given
// row: the offset of the current row's first element, advanced with carries (no division per
// row).
template <typename T> class RowCursor {
public:
  RowCursor(const StridedInput<T> &x, const std::vector<int64_t> &shape, int64_t row)
      : x_(x), shape_(shape), index_(shape.size() > 1 ? shape.size() - 1 : 0, 0) {
    for (int d = int(index_.size()) - 1; d >= 0; --d) {
      index_[size_t(d)] = row % shape[size_t(d)];
      row /= shape[size_t(d)];
      offset_ += index_[size_t(d)] * x.strides[size_t(d)];
    }
  }

  const T *row() const { return x_.data + offset_; }

  void next() {
    for (int d = int(index_.size()) - 1; d >= 0; --d) {
      offset_ += x_.strides[size_t(d)];
      if (++index_[size_t(d)] < shape_[size_t(d)]) return;
      offset_ -= index_[size_t(d)] * x_.strides[size_t(d)];
      index_[size_t(d)] = 0;
    }
  }

private:
  const StridedInput<T> &x_;
  const std::vector<int64_t> &shape_;
  std::vector<int64_t> index_;
  int64_t offset_ = 0;
};

// Copies cells [cell0, cell0 + n) of a strided input (the last dimension `inner` long, its
// stride `step`) into `values`; `cursor` is at cell0's row and is left at the row after the
// last cell's when that cell ends its row.
template <typename T>
void gather_cells(RowCursor<T> &cursor, int64_t cell0, int n, int64_t inner, int64_t step,
                  T *values) {
  int64_t j = cell0 % inner;
  for (int i = 0; i < n;) {
    const int len = int(std::min<int64_t>(n - i, inner - j));
    const T *p = cursor.row() + j * step;
    if (step == 1)
      for (int t = 0; t < len; ++t) values[i + t] = p[t];
    else
      for (int t = 0; t < len; ++t) values[i + t] = p[t * step];
    i += len;
    j += len;
    if (j == inner) {
      cursor.next();
      j = 0;
    }
  }
}

// Writes chunk results through the writer: `classes[j]` (0..kinds-1, or kinds for none) and
// `values[j]` of cells cell0 + j become pair-major counts and sums (one-hot per cell), in
// simple loops the compiler vectorises, then one emit_run for the chunk.
template <typename T> struct ChunkResult {
  int32_t classes[kChunk];
  T values[kChunk];
  int32_t counts[9 * kChunk];
  T sums[9 * kChunk];

  void emit(CellWriter<T> &writer, int64_t cell0, int n, int kinds) {
    for (int k = 0; k < kinds; ++k) {
      int32_t *c = counts + k * n;
      T *v = sums + k * n;
      for (int j = 0; j < n; ++j) {
        const bool hit = classes[j] == k;
        c[j] = hit ? 1 : 0;
        v[j] = hit ? values[j] : T(0);
      }
    }
    writer.emit_run(cell0, n, counts, sums, n);
  }
};

// Runs `body(thread_writer, begin, end)` over runs of consecutive cells in parallel, tasks of
// kTaskCells cells, and merges reductions.
template <typename S, typename Body>
void for_each_cell_run(const std::vector<int64_t> &shape, const ClassifyOutput &out,
                       Body body) {
  int64_t cells = 1;
  for (int64_t s : shape) cells *= s;
  if (cells == 0) return;
  const int64_t tasks = (cells + kTaskCells - 1) / kTaskCells;
  ParallelRun run;
  run.tasks(
      tasks, [&] { return CellWriter<S>(out); },
      [&](CellWriter<S> &writer, int64_t task) {
        run.checkpoint();
        body(writer, task * kTaskCells, std::min(cells, (task + 1) * kTaskCells));
      },
      [&](CellWriter<S> &writer) { writer.merge_into(); });
  run.finish();
}

}  // namespace

template <typename T>
void tensor_classify_cpu(const StridedInput<T> &x, const std::vector<int64_t> &shape,
                         T threshold, const ClassifyOutput &out) {
  const int64_t step = shape.empty() ? 0 : x.strides.back();
  const int64_t inner = shape.empty() ? 1 : shape.back();
  for_each_cell_run<T>(shape, out, [&](CellWriter<T> &writer, int64_t begin, int64_t end) {
    RowCursor<T> cursor(x, shape, begin / inner);
    ChunkResult<T> chunk;
    for (int64_t c0 = begin; c0 < end; c0 += kChunk) {
      const int n = int(std::min<int64_t>(kChunk, end - c0));
      gather_cells(cursor, c0, n, inner, step, chunk.values);
      for (int j = 0; j < n; ++j) chunk.classes[j] = classify_value(chunk.values[j], threshold);
      chunk.emit(writer, c0, n, 3);
    }
  });
}

template <typename T>
void multiply_classify_cpu(const StridedInput<T> &x, const StridedInput<T> &y,
                           const std::vector<int64_t> &shape, T x_threshold, T y_threshold,
                           const ClassifyOutput &out) {
  const int64_t x_step = shape.empty() ? 0 : x.strides.back();
  const int64_t y_step = shape.empty() ? 0 : y.strides.back();
  const int64_t inner = shape.empty() ? 1 : shape.back();
  for_each_cell_run<T>(shape, out, [&](CellWriter<T> &writer, int64_t begin, int64_t end) {
    RowCursor<T> x_cursor(x, shape, begin / inner), y_cursor(y, shape, begin / inner);
    ChunkResult<T> chunk;
    T a[kChunk], b[kChunk];
    for (int64_t c0 = begin; c0 < end; c0 += kChunk) {
      const int n = int(std::min<int64_t>(kChunk, end - c0));
      gather_cells(x_cursor, c0, n, inner, x_step, a);
      gather_cells(y_cursor, c0, n, inner, y_step, b);
      for (int j = 0; j < n; ++j) {
        const int ca = classify_value(a[j], x_threshold), cb = classify_value(b[j], y_threshold);
        const int none = (ca == kNoClass) | (cb == kNoClass);
        chunk.classes[j] = none ? 9 : class_pair_index(ca, cb);
        chunk.values[j] = a[j] * b[j];
      }
      chunk.emit(writer, c0, n, 9);
    }
  });
}

template void tensor_classify_cpu<float>(const StridedInput<float> &,
                                         const std::vector<int64_t> &, float,
                                         const ClassifyOutput &);
template void tensor_classify_cpu<double>(const StridedInput<double> &,
                                          const std::vector<int64_t> &, double,
                                          const ClassifyOutput &);
template void multiply_classify_cpu<float>(const StridedInput<float> &,
                                           const StridedInput<float> &,
                                           const std::vector<int64_t> &, float, float,
                                           const ClassifyOutput &);
template void multiply_classify_cpu<double>(const StridedInput<double> &,
                                            const StridedInput<double> &,
                                            const std::vector<int64_t> &, double, double,
                                            const ClassifyOutput &);

}  // namespace nearzero
