// The convolution's gradient with respect to the kernel as a gather GEMM for the tiled kernel
// (tiled_classify_cuda.cuh), one GEMM per group: rows (input channel of the group, tap),
// columns the output channels of the group, k (batch, output position); products x * d_out.
// Padded input positions load as "no class", so they add nothing, as SPEC §3 asks.
#include "cuda/conv_cuda.h"
#include "cuda/conv_gather_cuda.cuh"
#include "cuda/gather_classify_cuda.cuh"

namespace nearzero {
namespace {

template <typename T> struct FilterGradGather : tiled::Operands<T>, ConvIndexing {
  __device__ tiled::Row row(int64_t group, int64_t i) const {
    tiled::Row r{};
    int64_t c, tap[3];
    channel_tap(i, in_group, c, tap);
    r.x = (group * in_group + c) * input.channel;
    for (int d = 0; d < 3; ++d) {
      r.spatial[d] = int32_t(tap[d] * dilation[d]);
      r.x += r.spatial[d] * input.spatial[d];
    }
    // kernel cell (out channel, c, tap): i is c * taps + tap, or tap * in_group + c
    r.cell = channels_first ? i : i * out_channels;
    return r;
  }

  __device__ tiled::Column column(int64_t group, int64_t j) const {
    tiled::Column c{};
    c.channel = group * out_group + j;
    c.y = c.channel * output.channel;
    c.cell = channels_first ? c.channel * in_group * taps : c.channel;
    return c;
  }

  __device__ tiled::Depth depth(int64_t, int64_t kk) const {
    tiled::Depth d{};
    const int64_t b = kk / out_positions;
    int64_t position[3];
    unflatten(kk % out_positions, out_size, position);
    d.x = b * input.batch;
    d.y = b * output.batch;
    for (int q = 0; q < 3; ++q) {
      d.spatial[q] = int32_t(position[q] * stride[q] - pad[q]);
      d.x += int64_t(d.spatial[q]) * input.spatial[q];
      d.y += position[q] * output.spatial[q];
    }
    return d;
  }

  __device__ T x_value(const tiled::Row &r, const tiled::Depth &d) const {
    return in_padding(r, d) ? tiled::quiet_nan(T(0)) : this->x[r.x + d.x];
  }
};

template <typename T>
FilterGradGather<T> filter_grad_gather(const ConvGeometry &g, const T *x, const T *d_out,
                                       T x_threshold, T d_out_threshold) {
  auto c = conv_gather<FilterGradGather<T>>(g, x, d_out, x_threshold, d_out_threshold);
  c.n = c.in_group * c.taps;
  c.k = g.batch * c.out_positions;
  c.m = c.out_group;
  c.x_along_k = g.channels_first;  // channels_first: output positions (fastest in k) are contiguous
  c.y_along_k = g.channels_first;
  return c;
}

}  // namespace

template <typename T>
int64_t conv_backprop_filter_scratch_doubles(const ConvGeometry &g, bool has_infinity) {
  const int64_t k = filter_grad_gather<T>(g, nullptr, nullptr, T(0), T(0)).k;
  return gather::scratch_doubles<T, FilterGradGather<T>>(k, has_infinity);
}

template <typename T>
void conv_backprop_filter_classify_cuda(const ConvGeometry &g, const T *x, const T *d_out,
                                        T x_threshold, T d_out_threshold, bool has_infinity,
                                        const ClassifyOutput &out, double *scratch,
                                        int64_t scratch_doubles, void *stream) {
  gather::classify<T>(filter_grad_gather(g, x, d_out, x_threshold, d_out_threshold), out,
                      has_infinity, scratch, scratch_doubles, stream);
}

template int64_t conv_backprop_filter_scratch_doubles<float>(const ConvGeometry &, bool);
template int64_t conv_backprop_filter_scratch_doubles<double>(const ConvGeometry &, bool);
template void conv_backprop_filter_classify_cuda<float>(const ConvGeometry &, const float *,
                                                        const float *, float, float, bool,
                                                        const ClassifyOutput &, double *, int64_t,
                                                        void *);
template void conv_backprop_filter_classify_cuda<double>(const ConvGeometry &, const double *,
                                                         const double *, double, double, bool,
                                                         const ClassifyOutput &, double *,
                                                         int64_t, void *);

}  // namespace nearzero
