// The geometry of a convolution as both backends' kernels take it (bound from
// ConvGeometry.kernel_args() by bindings/conv_geometry_args.h). The operands' element strides
// are in common/conv_strides.h.
#pragma once
#include <cstdint>

namespace nearzero {

// A resolved convolution: every spatial quantity padded to three dimensions (1D and 2D
// convolutions have leading size-1 dimensions with stride 1, dilation 1 and no padding).
// Operands are C-contiguous in the layout `channels_first` selects:
//   activations  channels_last (N, D, H, W, C)        channels_first (N, C, D, H, W)
//   kernel       channels_last (KD, KH, KW, Cin/G, Cout)  channels_first (Cout, Cin/G, KD, KH, KW)
struct ConvGeometry {
  bool channels_first = false;
  int64_t batch = 0, in_channels = 0, out_channels = 0, groups = 1;
  int64_t in_size[3] = {1, 1, 1}, out_size[3] = {1, 1, 1}, kernel_size[3] = {1, 1, 1};
  int64_t stride[3] = {1, 1, 1}, dilation[3] = {1, 1, 1}, pad_before[3] = {0, 0, 0};
};

}  // namespace nearzero
