// The convolution's gradient with respect to the input as a gather GEMM for the tiled kernel
// (tiled_classify_cuda.cuh), one GEMM per group: rows (batch, input position), columns the
// input channels of the group, k (output channel of the group, tap); products d_out * kernel.
// A (position, tap) pair that no output position reaches (padding, or off the stride) loads as
// "no class", so it adds nothing, as SPEC §3 asks.
#include "cuda/conv_cuda.h"
#include "cuda/conv_gather_cuda.cuh"
#include "cuda/gather_classify_cuda.cuh"

namespace nearzero {
namespace {

template <typename T> struct InputGradGather : tiled::Operands<T>, ConvIndexing {
  __device__ tiled::Row row(int64_t group, int64_t i) const {
    tiled::Row r{};
    const int64_t b = i / in_positions, p = i % in_positions;
    int64_t position[3];
    unflatten(p, in_size, position);
    r.x = b * output.batch + group * out_group * output.channel;
    for (int d = 0; d < 3; ++d) r.spatial[d] = int32_t(position[d] + pad[d]);
    r.cell = activation_cell(b, p, in_channels, in_positions);
    return r;
  }

  __device__ tiled::Column column(int64_t group, int64_t j) const {
    tiled::Column c{};
    c.channel = group * in_group + j;
    c.y = group * out_group * kernel.out_channel + j * kernel.in_channel;
    c.cell = channels_first ? c.channel * in_positions : c.channel;
    return c;
  }

  __device__ tiled::Depth depth(int64_t, int64_t kk) const {
    tiled::Depth d{};
    int64_t c, tap[3];
    channel_tap(kk, out_group, c, tap);
    d.x = c * output.channel;
    d.y = c * kernel.out_channel;
    for (int q = 0; q < 3; ++q) {
      d.spatial[q] = int32_t(-tap[q] * dilation[q]);
      d.y += tap[q] * kernel.spatial[q];
    }
    return d;
  }

  // d_out[q] feeds input position p through tap t when q * stride = p + pad - t * dilation.
  __device__ T x_value(const tiled::Row &r, const tiled::Depth &d) const {
    int64_t at = r.x + d.x;
    for (int q = 0; q < 3; ++q) {
      int32_t v = r.spatial[q] + d.spatial[q];
      if (v < 0) return tiled::quiet_nan(T(0));
      if (stride[q] != 1) {
        if (v % stride[q] != 0) return tiled::quiet_nan(T(0));
        v /= stride[q];
      }
      if (v >= out_size[q]) return tiled::quiet_nan(T(0));
      at += int64_t(v) * output.spatial[q];
    }
    return this->x[at];
  }
};

template <typename T>
InputGradGather<T> input_grad_gather(const ConvGeometry &g, const T *d_out, const T *kernel,
                                     T d_out_threshold, T kernel_threshold) {
  auto c = conv_gather<InputGradGather<T>>(g, d_out, kernel, d_out_threshold, kernel_threshold);
  c.n = g.batch * c.in_positions;
  c.k = c.out_group * c.taps;
  c.m = c.in_group;
  c.x_along_k = !g.channels_first;  // channels_last: out channels (fastest in k) are contiguous
  c.y_along_k = true;
  return c;
}

}  // namespace

template <typename T>
int64_t conv_backprop_input_scratch_doubles(const ConvGeometry &g, bool has_infinity) {
  const int64_t k = input_grad_gather<T>(g, nullptr, nullptr, T(0), T(0)).k;
  return gather::scratch_doubles<T, InputGradGather<T>>(k, has_infinity);
}

template <typename T>
void conv_backprop_input_classify_cuda(const ConvGeometry &g, const T *d_out, const T *kernel,
                                       T d_out_threshold, T kernel_threshold, bool has_infinity,
                                       const ClassifyOutput &out, double *scratch,
                                       int64_t scratch_doubles, void *stream) {
  gather::classify<T>(input_grad_gather(g, d_out, kernel, d_out_threshold, kernel_threshold),
                      out, has_infinity, scratch, scratch_doubles, stream);
}

template int64_t conv_backprop_input_scratch_doubles<float>(const ConvGeometry &, bool);
template int64_t conv_backprop_input_scratch_doubles<double>(const ConvGeometry &, bool);
template void conv_backprop_input_classify_cuda<float>(const ConvGeometry &, const float *,
                                                       const float *, float, float, bool,
                                                       const ClassifyOutput &, double *, int64_t,
                                                       void *);
template void conv_backprop_input_classify_cuda<double>(const ConvGeometry &, const double *,
                                                        const double *, double, double, bool,
                                                        const ClassifyOutput &, double *,
                                                        int64_t, void *);

}  // namespace nearzero
