// The forward convolution as a gather GEMM for the tiled kernel (tiled_classify_cuda.cuh), one
// GEMM per group: rows (batch, output position), columns the output channels of the group, k
// (input channel, tap). Padded input positions load as "no class", so they add nothing, as
// SPEC §3 asks.
#include "cuda/conv_cuda.h"
#include "cuda/conv_gather_cuda.cuh"
#include "cuda/gather_classify_cuda.cuh"

namespace nearzero {
namespace {

template <typename T> struct ForwardGather : tiled::Operands<T>, ConvIndexing {
  __device__ tiled::Row row(int64_t group, int64_t i) const {
    tiled::Row r{};
    const int64_t b = i / out_positions, p = i % out_positions;
    int64_t position[3];
    unflatten(p, out_size, position);
    r.x = b * input.batch + group * in_group * input.channel;
    for (int d = 0; d < 3; ++d) {
      r.spatial[d] = int32_t(position[d] * stride[d] - pad[d]);
      r.x += int64_t(r.spatial[d]) * input.spatial[d];
    }
    r.cell = activation_cell(b, p, out_channels, out_positions);
    return r;
  }

  __device__ tiled::Column column(int64_t group, int64_t j) const {
    tiled::Column c{};
    c.channel = group * out_group + j;
    c.y = c.channel * kernel.out_channel;
    c.cell = channels_first ? c.channel * out_positions : c.channel;
    return c;
  }

  __device__ tiled::Depth depth(int64_t, int64_t kk) const {
    tiled::Depth d{};
    int64_t c, tap[3];
    channel_tap(kk, in_group, c, tap);
    d.x = c * input.channel;
    d.y = c * kernel.in_channel;
    for (int q = 0; q < 3; ++q) {
      d.spatial[q] = int32_t(tap[q] * dilation[q]);
      d.x += int64_t(d.spatial[q]) * input.spatial[q];
      d.y += tap[q] * kernel.spatial[q];
    }
    return d;
  }

  __device__ T x_value(const tiled::Row &r, const tiled::Depth &d) const {
    return in_padding(r, d) ? tiled::quiet_nan(T(0)) : this->x[r.x + d.x];
  }
};

template <typename T>
ForwardGather<T> forward_gather(const ConvGeometry &g, const T *x, const T *kernel,
                                T x_threshold, T kernel_threshold) {
  auto c = conv_gather<ForwardGather<T>>(g, x, kernel, x_threshold, kernel_threshold);
  c.n = g.batch * c.out_positions;
  c.k = c.in_group * c.taps;
  c.m = c.out_group;
  c.x_along_k = !g.channels_first;  // channels_last: in channels (fastest in k) are contiguous
  c.y_along_k = g.channels_first;
  return c;
}

}  // namespace

template <typename T> int64_t conv_scratch_doubles(const ConvGeometry &g, bool has_infinity) {
  const int64_t k = forward_gather<T>(g, nullptr, nullptr, T(0), T(0)).k;
  return gather::scratch_doubles<T, ForwardGather<T>>(k, has_infinity);
}

template <typename T>
void conv_classify_cuda(const ConvGeometry &g, const T *x, const T *kernel, T x_threshold,
                        T kernel_threshold, bool has_infinity, const ClassifyOutput &out,
                        double *scratch, int64_t scratch_doubles, void *stream) {
  gather::classify<T>(forward_gather(g, x, kernel, x_threshold, kernel_threshold), out,
                      has_infinity, scratch, scratch_doubles, stream);
}

template int64_t conv_scratch_doubles<float>(const ConvGeometry &, bool);
template int64_t conv_scratch_doubles<double>(const ConvGeometry &, bool);
template void conv_classify_cuda<float>(const ConvGeometry &, const float *, const float *, float,
                                        float, bool, const ClassifyOutput &, double *, int64_t,
                                        void *);
template void conv_classify_cuda<double>(const ConvGeometry &, const double *, const double *,
                                         double, double, bool, const ClassifyOutput &, double *,
                                         int64_t, void *);

}  // namespace nearzero
