// Fused convolution classify on CUDA: the forward convolution and its exact gradients with
// respect to the kernel and the input, for the ConvGeometry the CPU kernels take (cpu/conv_cpu.h;
// operands C-contiguous in the layout it names). Defined in conv_cuda.cu, bound in
// bindings/cuda_conv.cpp.
#pragma once
#include "cpu/conv_cpu.h"
#include "cuda/classify_output_cuda.h"

#include <cstdint>

namespace nearzero {

// kForward: (inputs, kernel) -> output cells; kFilterGrad: (x, d_out) -> kernel cells;
// kInputGrad: (d_out, kernel) -> input cells. The first operand gives the first class letter.
enum class ConvClassify : int { kForward = 0, kFilterGrad = 1, kInputGrad = 2 };

// `has_infinity`: an operand holds +-inf (takes the exact kernel). `scratch`:
// conv_scratch_doubles<T>(...) doubles of device memory, or null when that is 0.
// reduce="channel" reduces onto the op's channel: output channel (forward, kernel gradient)
// or input channel (input gradient).
template <typename T>
void conv_classify_cuda(ConvClassify op, const ConvGeometry &g, const T *first, const T *second,
                        T first_threshold, T second_threshold, bool has_infinity,
                        const DeviceOutput &out, double *scratch, int64_t scratch_doubles,
                        void *stream);

template <typename T>
int64_t conv_scratch_doubles(ConvClassify op, const ConvGeometry &g, bool has_infinity);

}  // namespace nearzero
