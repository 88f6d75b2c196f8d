// Fused convolution classify on CUDA, one file per op as on the CPU: the forward convolution
// (conv_forward_cuda.cu) and its exact gradients with respect to the kernel
// (conv_filter_grad_cuda.cu) and the input (conv_input_grad_cuda.cu), for the ConvGeometry the
// CPU kernels take (common/conv_geometry.h; operands C-contiguous in the layout it names).
// Bound in bindings/cuda_conv.cpp.
#pragma once
#include "common/conv_geometry.h"
#include "common/result_descriptor.h"

#include <cstdint>

namespace nearzero {

// Every op: `has_infinity`, an operand holds +-inf (takes the exact kernel); `scratch`, the
// op's *_scratch_doubles<T>(...) doubles of device memory, or null when that is 0. The first
// operand gives the first class letter.

// Forward: (inputs, kernel) -> output cells; reduce="channel" onto the output channel.
template <typename T>
void conv_classify_cuda(const ConvGeometry &g, const T *x, const T *kernel, T x_threshold,
                        T kernel_threshold, bool has_infinity, const ClassifyOutput &out,
                        double *scratch, int64_t scratch_doubles, void *stream);
template <typename T> int64_t conv_scratch_doubles(const ConvGeometry &g, bool has_infinity);

// Gradient w.r.t. the kernel: (x, d_out) -> kernel cells; reduce="channel" onto the output
// channel.
template <typename T>
void conv_backprop_filter_classify_cuda(const ConvGeometry &g, const T *x, const T *d_out,
                                        T x_threshold, T d_out_threshold, bool has_infinity,
                                        const ClassifyOutput &out, double *scratch,
                                        int64_t scratch_doubles, void *stream);
template <typename T>
int64_t conv_backprop_filter_scratch_doubles(const ConvGeometry &g, bool has_infinity);

// Gradient w.r.t. the input: (d_out, kernel) -> input cells; reduce="channel" onto the input
// channel.
template <typename T>
void conv_backprop_input_classify_cuda(const ConvGeometry &g, const T *d_out, const T *kernel,
                                       T d_out_threshold, T kernel_threshold, bool has_infinity,
                                       const ClassifyOutput &out, double *scratch,
                                       int64_t scratch_doubles, void *stream);
template <typename T>
int64_t conv_backprop_input_scratch_doubles(const ConvGeometry &g, bool has_infinity);

}  // namespace nearzero
