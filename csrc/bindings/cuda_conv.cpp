// Bindings of the CUDA convolution classify kernels (filled in with the kernels).
#include "bindings/cuda_bindings.h"

namespace nearzero {

void bind_cuda_conv(pybind11::module_ &) {}

}  // namespace nearzero
