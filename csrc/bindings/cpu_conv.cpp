// Bindings of the convolution classify kernels (filled in with the convolution kernels).
#include "bindings/cpu_bindings.h"
#include "common/parallel.h"

namespace nearzero {

int max_threads_for_python() { return max_threads(); }

void bind_conv(pybind11::module_ &) {}

}  // namespace nearzero
