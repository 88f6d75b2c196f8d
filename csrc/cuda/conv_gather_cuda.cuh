// What the convolution gather policies share (conv_forward_cuda.cu, conv_filter_grad_cuda.cu,
// conv_input_grad_cuda.cu): the geometry in the form the device indexes it, and the set-up of
// a gather GEMM with one GEMM per group (the tiled kernel's batch index). Each op's file says
// which (channel, tap, position) a row, a column and a k index stand for.
#pragma once
#include "common/conv_geometry.h"
#include "common/conv_strides.h"
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

  // The cell of batch entry b, position p of an activation-layout result with `channels`
  // channels over `positions` positions, less the channel's part (the column's).
  __device__ int64_t activation_cell(int64_t b, int64_t p, int64_t channels,
                                     int64_t positions) const {
    return channels_first ? b * channels * positions + p : (b * positions + p) * channels;
  }

  // Whether the input position row + depth lies in the padding (forward, kernel gradient).
  __device__ bool in_padding(const tiled::Row &r, const tiled::Depth &d) const {
    for (int q = 0; q < 3; ++q)
      if (unsigned(r.spatial[q] + d.spatial[q]) >= unsigned(in_size[q])) return true;
    return false;
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

// A convolution op's gather policy (a struct deriving from tiled::Operands<T> and ConvIndexing)
// with everything set but the GEMM shape and the lanes, which the op sets: the indexing, the
// operands and thresholds, one batch per group, reduction slots by column (the channel).
template <typename Gather, typename T>
Gather conv_gather(const ConvGeometry &g, const T *first, const T *second, T first_threshold,
                   T second_threshold) {
  Gather c{};
  static_cast<ConvIndexing &>(c) = conv_indexing(g);
  c.x = first;
  c.y = second;
  c.x_threshold = first_threshold;
  c.y_threshold = second_threshold;
  c.batches = g.groups;
  c.by_column = true;
  return c;
}

}  // namespace nearzero
