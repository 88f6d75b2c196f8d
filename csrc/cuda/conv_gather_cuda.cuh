// What the convolution gather policies share (conv_forward_cuda.cu, conv_filter_grad_cuda.cu,
// conv_input_grad_cuda.cu): the geometry in the form the device indexes it, the set-up of a
// gather GEMM with one GEMM per group (the tiled kernel's batch index), and the entry points of
// conv_cuda.h, which each op's file instantiates. Each op's file says which (channel, tap,
// position) a row, a column and a k index stand for.
#pragma once
#include "common/conv_geometry.h"
#include "common/conv_strides.h"
#include "cuda/conv_cuda.h"
#include "cuda/gather_classify_cuda.cuh"
#include "cuda/tiled_slice_cuda.cuh"

#include <climits>
#include <cstdint>
#include <stdexcept>

namespace nearzero {

struct ConvIndexing {
  bool channels_first;
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

  // Batch entry b, position p and its coordinates of index i of an activation with
  // `positions` positions of sizes `size`.
  __device__ static void batch_position(int64_t i, int64_t positions, const int32_t size[3],
                                        int64_t &b, int64_t &p, int64_t coord[3]) {
    b = i / positions;
    p = i % positions;
    unflatten(p, size, coord);
  }

  // The cell of batch entry b, position p of an activation-layout result with `channels`
  // channels over `positions` positions, less the channel's part (the column's).
  __device__ int64_t activation_cell(int64_t b, int64_t p, int64_t channels,
                                     int64_t positions) const {
    return channels_first ? b * channels * positions + p : (b * positions + p) * channels;
  }

  // The input position where output position `position`'s window starts (may be padding).
  __device__ void window_start(const int64_t position[3], int32_t start[3]) const {
    for (int q = 0; q < 3; ++q) start[q] = int32_t(position[q] * stride[q] - pad[q]);
  }

  // A tap's displacement from the window start.
  __device__ void tap_offset(const int64_t tap[3], int32_t offset[3]) const {
    for (int q = 0; q < 3; ++q) offset[q] = int32_t(tap[q] * dilation[q]);
  }

  // Element offset of spatial coordinates in a tensor with these spatial strides.
  template <typename Coord>
  __device__ static int64_t spatial_offset(const Coord coord[3], const int64_t strides[3]) {
    return int64_t(coord[0]) * strides[0] + int64_t(coord[1]) * strides[1] +
           int64_t(coord[2]) * strides[2];
  }

  // The input x at input position row + depth; padding loads as "no class" (the x_value of
  // the forward and kernel-gradient policies).
  template <typename T>
  __device__ T padded_input(const T *x, const tiled::Row &r, const tiled::Depth &d) const {
    for (int q = 0; q < 3; ++q)
      if (unsigned(r.spatial[q] + d.spatial[q]) >= unsigned(in_size[q]))
        return tiled::quiet_nan(T(0));
    return x[r.x + d.x];
  }
};

// The indexing of a convolution; refuses sizes the int32 position arithmetic cannot take.
inline ConvIndexing conv_indexing(const ConvGeometry &g) {
  for (int d = 0; d < 3; ++d)
    if (g.in_size[d] > INT_MAX / 2 || g.out_size[d] > INT_MAX / 2 ||
        (g.kernel_size[d] - 1) * g.dilation[d] > INT_MAX / 2 || g.pad_before[d] > INT_MAX / 2 ||
        g.stride[d] > INT_MAX / 2)
      throw std::invalid_argument("nearzero: convolution too large for the CUDA kernels");
  ConvIndexing c{};
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
  return c;
}

// An op's gather policy, defined in the op's file: a struct deriving from tiled::Operands<T> and
// ConvIndexing with row, column, depth and x_value, and set_shape, which sets the GEMM shape and
// the lanes from the geometry.
template <typename Op, typename T> struct ConvGatherOf;

template <typename Op, typename T>
ConvGatherOf<Op, T> conv_gather(const ConvGeometry &g, const T *first, const T *second,
                                T first_threshold, T second_threshold) {
  ConvGatherOf<Op, T> c{};
  static_cast<ConvIndexing &>(c) = conv_indexing(g);
  c.x = first;
  c.y = second;
  c.x_threshold = first_threshold;
  c.y_threshold = second_threshold;
  c.batches = g.groups;
  c.by_column = true;  // reductions onto the column's channel
  c.set_shape(g);
  return c;
}

template <typename Op, typename T>
int64_t conv_scratch_doubles(const ConvGeometry &g, bool has_infinity) {
  const int64_t k = conv_gather<Op, T>(g, nullptr, nullptr, T(0), T(0)).k;
  return gather::scratch_doubles<T, ConvGatherOf<Op, T>>(k, has_infinity);
}

template <typename Op, typename T>
void conv_classify_cuda(const ConvGeometry &g, const T *first, const T *second,
                        T first_threshold, T second_threshold, bool has_infinity,
                        const ClassifyOutput &out, double *scratch, int64_t scratch_doubles,
                        void *stream) {
  gather::classify<T>(conv_gather<Op>(g, first, second, first_threshold, second_threshold), out,
                      has_infinity, scratch, scratch_doubles, stream);
}

// The entry points of conv_cuda.h for one op, in float and double.
#define NEARZERO_CONV_CUDA_OP(Op, T)                                                              \
  template int64_t conv_scratch_doubles<Op, T>(const ConvGeometry &, bool);                       \
  template void conv_classify_cuda<Op, T>(const ConvGeometry &, const T *, const T *, T, T, bool, \
                                          const ClassifyOutput &, double *, int64_t, void *);
#define NEARZERO_CONV_CUDA_ENTRY_POINTS(Op)                                                       \
  NEARZERO_CONV_CUDA_OP(Op, float) NEARZERO_CONV_CUDA_OP(Op, double)

}  // namespace nearzero
