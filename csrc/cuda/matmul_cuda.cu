// Matmul classify on CUDA: the gather policy of a batched (n, k) @ (k, m) product with
// per-batch offsets and arbitrary element strides, run by the tiled kernel, or by the exact
// kernel for inputs holding +-inf or k >= 2^31.
#include "cuda/gather_classify_cuda.cuh"
#include "cuda/matmul_cuda.h"

#include <stdexcept>

namespace nearzero {
namespace {

template <typename T> struct MatmulGather : tiled::Operands<T> {
  const int64_t *x_offsets, *y_offsets;
  int64_t x_row_stride, x_col_stride, y_row_stride, y_col_stride;
  int64_t channels;  // reduce="channel": the last value axis, which is j, or i when m == 1

  __device__ tiled::Row row(int64_t batch, int64_t i) const {
    tiled::Row r{};
    r.x = x_offsets[batch] + i * x_row_stride;
    r.cell = (batch * this->n + i) * this->m;
    r.channel = i % channels;
    return r;
  }
  __device__ tiled::Column column(int64_t batch, int64_t j) const {
    tiled::Column c{};
    c.y = y_offsets[batch] + j * y_col_stride;
    c.cell = j;
    c.channel = j % channels;
    return c;
  }
  __device__ tiled::Depth depth(int64_t, int64_t kk) const {
    tiled::Depth d{};
    d.x = kk * x_col_stride;
    d.y = kk * y_row_stride;
    return d;
  }
  __device__ T x_value(const tiled::Row &r, const tiled::Depth &d) const {
    return this->x[r.x + d.x];
  }
};

template <typename T>
MatmulGather<T> matmul_gather(const MatmulProblem<T> &p, const ClassifyOutput &out) {
  const tiled::Operands<T> operands{
      p.x, p.y, p.x_threshold, p.y_threshold, p.batches, p.n, p.k, p.m, p.m > 1,
      // lanes along k when that is x's contiguous axis, along j when it is y's
      p.x_col_stride == 1, p.y_row_stride == 1 && p.y_col_stride != 1};
  return {operands, p.x_offsets, p.y_offsets, p.x_row_stride, p.x_col_stride, p.y_row_stride,
          p.y_col_stride, out.mode == ReduceMode::kChannel ? out.channels : 1};
}

}  // namespace

template <typename T> int64_t matmul_scratch_doubles(int64_t k, bool has_infinity) {
  return gather::scratch_doubles<T, MatmulGather<T>>(k, has_infinity);
}

template <typename T>
void matmul_classify_cuda(const MatmulProblem<T> &p, const ClassifyOutput &out, bool has_infinity,
                          double *scratch, int64_t scratch_doubles, void *stream) {
  if (p.batches == 0 || p.n == 0 || p.m == 0) return;
  if (out.mode == ReduceMode::kChannel) {
    const int64_t axis = p.m > 1 ? p.m : p.n;
    if (out.channel_inner != 1 || out.channels <= 0 || axis % out.channels != 0)
      throw std::invalid_argument(
          "nearzero: matmul reduce='channel' reduces over the last value axis only");
  }
  gather::classify<T>(matmul_gather(p, out), out, has_infinity, scratch, scratch_doubles, stream);
}

template int64_t matmul_scratch_doubles<float>(int64_t, bool);
template int64_t matmul_scratch_doubles<double>(int64_t, bool);
template void matmul_classify_cuda<float>(const MatmulProblem<float> &, const ClassifyOutput &,
                                          bool, double *, int64_t, void *);
template void matmul_classify_cuda<double>(const MatmulProblem<double> &, const ClassifyOutput &,
                                           bool, double *, int64_t, void *);

}  // namespace nearzero
