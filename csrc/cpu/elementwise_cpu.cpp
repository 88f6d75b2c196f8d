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

}  // namespace

template <typename T>
void tensor_classify_cpu(const StridedInput<T> &x, const std::vector<int64_t> &shape,
                         T threshold, const ClassifyOutput &out) {
  const int64_t step = shape.empty() ? 0 : x.strides.back();
  const int64_t inner = shape.empty() ? 1 : shape.back();
  for_each_row<T>(shape, out, [&](CellWriter<T> &writer, int64_t row, int64_t begin, int64_t end) {
    const T *p = x.data + row_offset(row, shape, x.strides);
    for (int64_t j = begin; j < end; ++j) {
      const T v = p[j * step];
      int32_t counts[3] = {0, 0, 0};
      T sums[3] = {T(0), T(0), T(0)};
      const int c = classify_value(v, threshold);
      if (c != kNoClass) {
        counts[c] = 1;
        sums[c] = v;
      }
      writer.emit(row * inner + j, counts, sums);
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
    for (int64_t j = begin; j < end; ++j) {
      const T a = px[j * x_step], b = py[j * y_step];
      int32_t counts[9] = {0};
      T sums[9] = {T(0)};
      const int ca = classify_value(a, x_threshold), cb = classify_value(b, y_threshold);
      if (ca != kNoClass && cb != kNoClass) {
        const int pair = class_pair_index(ca, cb);
        counts[pair] = 1;
        sums[pair] = a * b;
      }
      writer.emit(row * inner + j, counts, sums);
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
