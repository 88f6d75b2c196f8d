// The convolution geometry as the bindings receive it: Python's ConvGeometry.kernel_args()
// (ops/conv_geometry.py), checked and unpacked. Shared by bindings/cpu_conv.cpp and
// bindings/cuda_conv.cpp.
#pragma once
#include "common/conv_geometry.h"

#include <cstdint>
#include <stdexcept>
#include <vector>

namespace nearzero {

// channels_first, batch, in_channels, out_channels, groups, then in_size, out_size,
// kernel_size, stride, dilation, pad_before (three each, leading 1s / 0s for fewer spatial
// dimensions).
constexpr size_t kConvGeometryFields = 23;

inline ConvGeometry conv_geometry_from_args(const std::vector<int64_t> &v) {
  if (v.size() != kConvGeometryFields)
    throw std::invalid_argument("nearzero: convolution geometry needs 23 integers");
  ConvGeometry g;
  g.channels_first = v[0] != 0;
  g.batch = v[1];
  g.in_channels = v[2];
  g.out_channels = v[3];
  g.groups = v[4];
  for (int d = 0; d < 3; ++d) {
    g.in_size[d] = v[5 + d];
    g.out_size[d] = v[8 + d];
    g.kernel_size[d] = v[11 + d];
    g.stride[d] = v[14 + d];
    g.dilation[d] = v[17 + d];
    g.pad_before[d] = v[20 + d];
    if (g.in_size[d] < 0 || g.out_size[d] < 0 || g.kernel_size[d] < 0 || g.stride[d] < 1 ||
        g.dilation[d] < 1 || g.pad_before[d] < 0)
      throw std::invalid_argument("nearzero: invalid convolution geometry");
  }
  if (g.batch < 0 || g.in_channels < 0 || g.out_channels < 0 || g.groups < 1 ||
      g.in_channels % g.groups != 0 || g.out_channels % g.groups != 0)
    throw std::invalid_argument("nearzero: invalid convolution channels or groups");
  // The kernels index in int64: every element count and every position they compute
  // (cell * stride + pad + tap * dilation, either way round) must fit with room to spare.
  using Wide = __int128;
  const Wide limit = Wide(1) << 62;
  Wide in_elements = Wide(g.batch) * g.in_channels, out_elements = Wide(g.batch) * g.out_channels;
  Wide kernel_elements = Wide(g.in_channels / g.groups) * g.out_channels;
  bool fits = in_elements < limit && out_elements < limit && kernel_elements < limit;
  for (int d = 0; d < 3 && fits; ++d) {
    in_elements *= g.in_size[d];
    out_elements *= g.out_size[d];
    kernel_elements *= g.kernel_size[d];
    const Wide reach = Wide(g.out_size[d]) * g.stride[d] + Wide(g.kernel_size[d]) * g.dilation[d] +
                       g.pad_before[d] + g.in_size[d];
    fits = in_elements < limit && out_elements < limit && kernel_elements < limit && reach < limit;
  }
  if (!fits) throw std::invalid_argument("nearzero: convolution geometry overflows int64");
  return g;
}

}  // namespace nearzero
