// Fused convolution classify kernels, CPU: the forward convolution and its gradients with
// respect to the kernel and the input. Defined in conv_forward_cpu.cpp, conv_input_grad_cpu.cpp
// and conv_filter_grad_cpu.cpp; bound in bindings/cpu_conv.cpp.
#pragma once
#include "common/conv_geometry.h"
#include "common/result_descriptor.h"

#include <cstdint>

namespace nearzero {

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
