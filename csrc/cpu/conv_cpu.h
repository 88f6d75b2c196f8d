// Fused convolution classify kernels, CPU: the forward convolution and its gradients with
// respect to the kernel and the input. Defined in conv_forward_cpu.cpp, conv_input_grad_cpu.cpp
// and conv_filter_grad_cpu.cpp; bound in bindings/cpu_conv.cpp.
#pragma once
#include "cpu/classify_output.h"

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

// Forward: cells of the output (activation layout, Cout channels); first class from x.
template <typename T>
void conv_classify_cpu(const ConvGeometry &g, const T *x, const T *kernel, T x_threshold,
                       T kernel_threshold, const ClassifyOutput &out);

// Gradient w.r.t. the kernel: cells of the kernel layout; products x * d_out, first class
// from x.
template <typename T>
void conv_backprop_filter_classify_cpu(const ConvGeometry &g, const T *x, const T *d_out,
                                       T x_threshold, T d_out_threshold,
                                       const ClassifyOutput &out);

// Gradient w.r.t. the input: cells of the input (activation layout, Cin channels); products
// d_out * kernel, first class from d_out.
template <typename T>
void conv_backprop_input_classify_cpu(const ConvGeometry &g, const T *d_out, const T *kernel,
                                      T d_out_threshold, T kernel_threshold,
                                      const ClassifyOutput &out);

}  // namespace nearzero
