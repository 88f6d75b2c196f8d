// Elementwise classify kernels: one pass over the (broadcast) cells, parallel over rows of the
// last dimension.
#include "cpu/elementwise_cpu.h"
#include "common/classify_rule.h"
#include "cpu/parallel.h"

#include <algorithm>

namespace nearzero {
namespace {

// Offset of the first element of `row` (a row-major index over all but the last dim).
int64_t row_offset(int64_t row, const std::vector<int64_t> &shape,
                   const std::vector<int64_t> &strides) {
  int64_t offset = 0;
  for (int d = int(shape.size()) - 2; d >= 0; --d) {
    offset += (row % shape[d]) * strides[d];
    row /= shape[d];
  }
  return offset;
}

// Cells per task: long enough to amortise its hand-out, short enough for interrupt checks.
constexpr int64_t kTaskCells = 1 << 16;

// Runs `body(thread_writer, row, begin, end)` over every row's cells [begin, end) of the last
// dimension in parallel, in tasks of about kTaskCells cells, and merges reductions.
template <typename S, typename Body>
void for_each_row(const std::vector<int64_t> &shape, const ClassifyOutput &out, Body body) {
  int64_t cells = 1;
  for (int64_t s : shape) cells *= s;
  if (cells == 0) return;
  const int64_t inner = shape.empty() ? 1 : shape.back();
  const int64_t rows = cells / inner;
  // A task is a run of whole rows, or a piece of one row when rows are long.
  const int64_t rows_per_task = std::max<int64_t>(1, kTaskCells / inner);
  const int64_t pieces = (inner + kTaskCells - 1) / kTaskCells;  // per row, if rows are long
  const int64_t tasks = rows_per_task > 1 ? (rows + rows_per_task - 1) / rows_per_task
                                          : rows * pieces;
  ParallelRun run;
  run.tasks(
      tasks, [&] { return CellWriter<S>(out); },
      [&](CellWriter<S> &writer, int64_t task) {
        run.checkpoint();
        if (rows_per_task > 1) {
          const int64_t end = std::min(rows, (task + 1) * rows_per_task);
          for (int64_t row = task * rows_per_task; row < end; ++row) body(writer, row, 0, inner);
          return;
        }
        int64_t begin, end;
        chunk_range(inner, pieces, task % pieces, begin, end);
        body(writer, task / pieces, begin, end);
      },
      [&](CellWriter<S> &writer) { writer.merge_into(); });
  run.finish();
}

// Cells per chunk: a chunk's values, classes and pair-major results stay in L1.
constexpr int kChunk = 256;

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

}  // namespace

// Both kernels read a row in chunks of kChunk cells: values (any stride, 0 for broadcasting)
// into a chunk array, classes and products in one vectorisable pass, then the one-hot results.
template <typename T>
void tensor_classify_cpu(const StridedInput<T> &x, const std::vector<int64_t> &shape,
                         T threshold, const ClassifyOutput &out) {
  const int64_t step = shape.empty() ? 0 : x.strides.back();
  const int64_t inner = shape.empty() ? 1 : shape.back();
  for_each_row<T>(shape, out, [&](CellWriter<T> &writer, int64_t row, int64_t begin, int64_t end) {
    const T *p = x.data + row_offset(row, shape, x.strides);
    ChunkResult<T> chunk;
    for (int64_t j0 = begin; j0 < end; j0 += kChunk) {
      const int n = int(std::min<int64_t>(kChunk, end - j0));
      for (int j = 0; j < n; ++j) chunk.values[j] = p[(j0 + j) * step];
      for (int j = 0; j < n; ++j) chunk.classes[j] = classify_value(chunk.values[j], threshold);
      chunk.emit(writer, row * inner + j0, n, 3);
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
  for_each_row<T>(shape, out, [&](CellWriter<T> &writer, int64_t row, int64_t begin, int64_t end) {
    const T *px = x.data + row_offset(row, shape, x.strides);
    const T *py = y.data + row_offset(row, shape, y.strides);
    ChunkResult<T> chunk;
    T a[kChunk], b[kChunk];
    for (int64_t j0 = begin; j0 < end; j0 += kChunk) {
      const int n = int(std::min<int64_t>(kChunk, end - j0));
      for (int j = 0; j < n; ++j) a[j] = px[(j0 + j) * x_step];
      for (int j = 0; j < n; ++j) b[j] = py[(j0 + j) * y_step];
      for (int j = 0; j < n; ++j) {
        const int ca = classify_value(a[j], x_threshold), cb = classify_value(b[j], y_threshold);
        const int none = (ca == kNoClass) | (cb == kNoClass);
        chunk.classes[j] = none ? 9 : class_pair_index(ca, cb);
        chunk.values[j] = a[j] * b[j];
      }
      chunk.emit(writer, row * inner + j0, n, 9);
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
