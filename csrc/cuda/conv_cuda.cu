// Convolutions as gather GEMMs for the tiled kernel (tiled_classify_cuda.cuh), one GEMM per
// group (the kernel's batch index):
//   forward      rows (batch, output position)  columns out channel  k (in channel, tap)
//   kernel grad  rows (in channel, tap)         columns out channel  k (batch, output position)
//   input grad   rows (batch, input position)   columns in channel   k (out channel, tap)
// Element addresses, cells and channels split into row, column and depth parts; padded or
// off-stride positions load as "no class", so they add nothing, as SPEC §3 asks.
#include "common/conv_strides.h"
#include "cuda/conv_cuda.h"
#include "cuda/exact_classify_cuda.cuh"
#include "cuda/tiled_classify_cuda.cuh"

#include <climits>
#include <stdexcept>

namespace nearzero {
namespace {

template <typename T> struct ConvGather {
  const T *x, *y;
  int op;  // ConvClassify
  int64_t batches, n, k, m;
  T x_threshold, y_threshold;
  bool by_column, x_along_k, y_along_k, channels_first;
  int64_t in_channels, out_channels, in_group, out_group, taps, in_positions, out_positions;
  int32_t in_size[3], out_size[3], kernel_size[3], stride[3], dilation[3], pad[3];
  ActivationStrides input, output;  // element strides of the activation and d_out/output
  KernelStrides kernel;

  __device__ static void unflatten(int64_t index, const int32_t size[3], int64_t coord[3]) {
    coord[2] = index % size[2];
    index /= size[2];
    coord[1] = index % size[1];
    coord[0] = index / size[1];
  }
  // (channel, tap) of a k or row index: channel-major in channels_first, tap-major otherwise,
  // so that consecutive indices walk the operand's contiguous axis.
  __device__ void channel_tap(int64_t index, int64_t channels, int64_t &channel,
                              int64_t tap[3]) const {
    int64_t flat;
    if (channels_first) {
      channel = index / taps;
      flat = index % taps;
    } else {
      channel = index % channels;
      flat = index / channels;
    }
    unflatten(flat, kernel_size, tap);
  }

  __device__ tiled::Row row(int64_t group, int64_t i) const {
    tiled::Row r{};
    int64_t position[3];
    if (op == int(ConvClassify::kFilterGrad)) {  // (in channel, tap)
      int64_t c;
      channel_tap(i, in_group, c, position);
      r.x = (group * in_group + c) * input.channel;
      for (int d = 0; d < 3; ++d) {
        r.spatial[d] = int32_t(position[d] * dilation[d]);
        r.x += r.spatial[d] * input.spatial[d];
      }
      // kernel cell (out channel, c, tap): i is c * taps + tap, or tap * in_group + c
      r.cell = channels_first ? i : i * out_channels;
      return r;
    }
    const int64_t positions = op == int(ConvClassify::kForward) ? out_positions : in_positions;
    const int64_t b = i / positions, p = i % positions;
    if (op == int(ConvClassify::kForward)) {  // (batch, output position)
      unflatten(p, out_size, position);
      r.x = b * input.batch + group * in_group * input.channel;
      for (int d = 0; d < 3; ++d) {
        r.spatial[d] = int32_t(position[d] * stride[d] - pad[d]);
        r.x += int64_t(r.spatial[d]) * input.spatial[d];
      }
      r.cell = channels_first ? b * out_channels * out_positions + p
                              : (b * out_positions + p) * out_channels;
    } else {  // input gradient: (batch, input position)
      unflatten(p, in_size, position);
      r.x = b * output.batch + group * out_group * output.channel;
      for (int d = 0; d < 3; ++d) r.spatial[d] = int32_t(position[d] + pad[d]);
      r.cell = channels_first ? b * in_channels * in_positions + p
                              : (b * in_positions + p) * in_channels;
    }
    return r;
  }

  __device__ tiled::Column column(int64_t group, int64_t j) const {
    tiled::Column c{};
    if (op == int(ConvClassify::kInputGrad)) {  // in channel
      c.channel = group * in_group + j;
      c.y = group * out_group * kernel.out_channel + j * kernel.in_channel;
      c.cell = channels_first ? c.channel * in_positions : c.channel;
      return c;
    }
    c.channel = group * out_group + j;  // out channel
    if (op == int(ConvClassify::kForward)) {
      c.y = c.channel * kernel.out_channel;
      c.cell = channels_first ? c.channel * out_positions : c.channel;
    } else {
      c.y = c.channel * output.channel;
      c.cell = channels_first ? c.channel * in_group * taps : c.channel;
    }
    return c;
  }

  __device__ tiled::Depth depth(int64_t, int64_t kk) const {
    tiled::Depth d{};
    int64_t position[3];
    if (op == int(ConvClassify::kFilterGrad)) {  // (batch, output position)
      const int64_t b = kk / out_positions;
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
    int64_t c;
    if (op == int(ConvClassify::kForward)) {  // (in channel, tap)
      channel_tap(kk, in_group, c, position);
      d.x = c * input.channel;
      d.y = c * kernel.in_channel;
      for (int q = 0; q < 3; ++q) {
        d.spatial[q] = int32_t(position[q] * dilation[q]);
        d.x += int64_t(d.spatial[q]) * input.spatial[q];
        d.y += position[q] * kernel.spatial[q];
      }
    } else {  // input gradient: (out channel, tap)
      channel_tap(kk, out_group, c, position);
      d.x = c * output.channel;
      d.y = c * kernel.out_channel;
      for (int q = 0; q < 3; ++q) {
        d.spatial[q] = int32_t(-position[q] * dilation[q]);
        d.y += position[q] * kernel.spatial[q];
      }
    }
    return d;
  }

  __device__ T x_value(const tiled::Row &r, const tiled::Depth &d) const {
    if (op != int(ConvClassify::kInputGrad)) {
      for (int q = 0; q < 3; ++q)
        if (unsigned(r.spatial[q] + d.spatial[q]) >= unsigned(in_size[q]))
          return tiled::quiet_nan(T(0));  // padding
      return x[r.x + d.x];
    }
    // d_out[q] feeds input position p through tap t when q * stride = p + pad - t * dilation.
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
    return x[at];
  }

  __device__ T y_value(const tiled::Depth &d, const tiled::Column &c) const {
    return y[d.y + c.y];
  }
};

template <typename T>
ConvGather<T> conv_gather(ConvClassify op, const ConvGeometry &g, const T *first,
                          const T *second, T first_threshold, T second_threshold) {
  for (int d = 0; d < 3; ++d)
    if (g.in_size[d] > INT_MAX / 2 || g.out_size[d] > INT_MAX / 2 ||
        (g.kernel_size[d] - 1) * g.dilation[d] > INT_MAX / 2 || g.pad_before[d] > INT_MAX / 2 ||
        g.stride[d] > INT_MAX / 2)
      throw std::invalid_argument("nearzero: convolution too large for the CUDA kernels");
  ConvGather<T> c{};
  c.x = first;
  c.y = second;
  c.op = int(op);
  c.x_threshold = first_threshold;
  c.y_threshold = second_threshold;
  c.by_column = true;
  c.channels_first = g.channels_first;
  c.in_channels = g.in_channels;
  c.out_channels = g.out_channels;
  c.in_group = g.in_channels / g.groups;
  c.out_group = g.out_channels / g.groups;
  c.taps = g.kernel_size[0] * g.kernel_size[1] * g.kernel_size[2];
  c.in_positions = g.in_size[0] * g.in_size[1] * g.in_size[2];
  c.out_positions = g.out_size[0] * g.out_size[1] * g.out_size[2];
  for (int d = 0; d < 3; ++d) {
    c.in_size[d] = int32_t(g.in_size[d]);
    c.out_size[d] = int32_t(g.out_size[d]);
    c.kernel_size[d] = int32_t(g.kernel_size[d]);
    c.stride[d] = int32_t(g.stride[d]);
    c.dilation[d] = int32_t(g.dilation[d]);
    c.pad[d] = int32_t(g.pad_before[d]);
  }
  c.input = activation_strides(g.in_size, g.in_channels, g.channels_first);
  c.output = activation_strides(g.out_size, g.out_channels, g.channels_first);
  c.kernel = kernel_strides(g);
  c.batches = g.groups;
  const bool cf = g.channels_first;
  switch (op) {
  case ConvClassify::kForward:
    c.n = g.batch * c.out_positions;
    c.k = c.in_group * c.taps;
    c.m = c.out_group;
    c.x_along_k = !cf;  // channels_last: in channels (fastest in k) are contiguous
    c.y_along_k = cf;
    break;
  case ConvClassify::kFilterGrad:
    c.n = c.in_group * c.taps;
    c.k = g.batch * c.out_positions;
    c.m = c.out_group;
    c.x_along_k = cf;  // channels_first: output positions (fastest in k) are contiguous
    c.y_along_k = cf;
    break;
  case ConvClassify::kInputGrad:
    c.n = g.batch * c.in_positions;
    c.k = c.out_group * c.taps;
    c.m = c.in_group;
    c.x_along_k = !cf;
    c.y_along_k = true;
    break;
  }
  return c;
}

bool uses_tiled_kernel(int64_t k, bool has_infinity) { return !has_infinity && k <= INT_MAX; }

}  // namespace

template <typename T>
int64_t conv_scratch_doubles(ConvClassify op, const ConvGeometry &g, bool has_infinity) {
  const ConvGather<T> c = conv_gather<T>(op, g, nullptr, nullptr, T(0), T(0));
  return uses_tiled_kernel(c.k, has_infinity) ? tiled::scratch_doubles<T, ConvGather<T>>(c.k)
                                                 : 0;
}

template <typename T>
void conv_classify_cuda(ConvClassify op, const ConvGeometry &g, const T *first, const T *second,
                        T first_threshold, T second_threshold, bool has_infinity,
                        const DeviceOutput &out, double *scratch, int64_t scratch_doubles,
                        void *stream) {
  const ConvGather<T> c =
      conv_gather<T>(op, g, first, second, first_threshold, second_threshold);
  if (c.batches == 0 || c.n == 0 || c.m == 0) return;
  if (uses_tiled_kernel(c.k, has_infinity))
    tiled::launch<T>(c, out, scratch, scratch_doubles, stream);
  else
    exact::launch<T>(c, out, stream);
}

template int64_t conv_scratch_doubles<float>(ConvClassify, const ConvGeometry &, bool);
template int64_t conv_scratch_doubles<double>(ConvClassify, const ConvGeometry &, bool);
template void conv_classify_cuda<float>(ConvClassify, const ConvGeometry &, const float *,
                                        const float *, float, float, bool, const DeviceOutput &,
                                        double *, int64_t, void *);
template void conv_classify_cuda<double>(ConvClassify, const ConvGeometry &, const double *,
                                         const double *, double, double, bool,
                                         const DeviceOutput &, double *, int64_t, void *);

}  // namespace nearzero
