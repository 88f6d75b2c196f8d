// Element strides of convolution operands in either layout (SPEC §3): activations
// (N, C, *spatial) or (N, *spatial, C), kernels (Cout, Cin/G, *spatial) or (*spatial, Cin/G, Cout).
// Host code shared by the CPU kernels (cpu/conv_layout.h) and the CUDA gather set-up
// (cuda/conv_gather_cuda.cuh).
#pragma once
#include "common/conv_geometry.h"

#include <cstdint>

namespace nearzero {

// Strides (in elements) of an activation tensor: batch, channel and the three spatial axes.
struct ActivationStrides {
  int64_t batch, channel, spatial[3];
};

inline ActivationStrides activation_strides(const int64_t size[3], int64_t channels,
                                            bool channels_first) {
  ActivationStrides s;
  const int64_t positions = size[0] * size[1] * size[2];
  const int64_t unit = channels_first ? 1 : channels;
  s.spatial[2] = unit;
  s.spatial[1] = unit * size[2];
  s.spatial[0] = unit * size[2] * size[1];
  s.channel = channels_first ? positions : 1;
  s.batch = positions * channels;
  return s;
}

// Strides of a kernel: output channel, input channel (within a group) and the spatial taps.
struct KernelStrides {
  int64_t out_channel, in_channel, spatial[3];
};

inline KernelStrides kernel_strides(const ConvGeometry &g) {
  KernelStrides s;
  const int64_t taps = g.kernel_size[0] * g.kernel_size[1] * g.kernel_size[2];
  const int64_t in_per_group = g.in_channels / g.groups;
  if (g.channels_first) {
    s.spatial[2] = 1;
    s.spatial[1] = g.kernel_size[2];
    s.spatial[0] = g.kernel_size[2] * g.kernel_size[1];
    s.in_channel = taps;
    s.out_channel = taps * in_per_group;
  } else {
    s.out_channel = 1;
    s.in_channel = g.out_channels;
    s.spatial[2] = in_per_group * g.out_channels;
    s.spatial[1] = s.spatial[2] * g.kernel_size[2];
    s.spatial[0] = s.spatial[1] * g.kernel_size[1];
  }
  return s;
}

}  // namespace nearzero
