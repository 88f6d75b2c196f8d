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

// The ops. The first operand gives the first class letter; reduce="channel" reduces onto the
// channel of the cells' tensor.
struct ConvForward;     // (x, kernel) -> output cells
struct ConvFilterGrad;  // (x, d_out) -> kernel cells
struct ConvInputGrad;   // (d_out, kernel) -> input cells

// `has_infinity`: an operand holds +-inf (takes the exact kernel). `scratch`:
// conv_scratch_doubles<Op, T>(...) doubles of device memory, or null when that is 0.
template <typename Op, typename T>
void conv_classify_cuda(const ConvGeometry &g, const T *first, const T *second,
                        T first_threshold, T second_threshold, bool has_infinity,
                        const ClassifyOutput &out, double *scratch, int64_t scratch_doubles,
                        void *stream);

template <typename Op, typename T>
int64_t conv_scratch_doubles(const ConvGeometry &g, bool has_infinity);

}  // namespace nearzero
