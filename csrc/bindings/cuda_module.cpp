// pybind11 bindings of the CUDA kernels as `nearzero._cuda`. Takes raw device pointers and a
// stream handle (from __cuda_array_interface__ / torch / CuPy in Python); never links libtorch.
// Op families are bound in cuda_<family>.cpp; this file holds the module and device queries.
#include "bindings/cuda_bindings.h"
#include "cuda/device_info_cuda.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>

namespace py = pybind11;

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "nearzero CUDA kernels (private; use the nearzero package)";
  // First: the signatures of the bindings below name the class.
  nearzero::bind_result_spec<std::uintptr_t, std::uintptr_t>(m);
  m.def("device_count", &nearzero::cuda_device_count, "Number of visible CUDA devices.");
  m.def(
      "memory_info",
      [](int device) {
        py::gil_scoped_release release;
        return nearzero::cuda_memory_info(device);
      },
      py::arg("device"), "(free bytes, total bytes) of a device, from cudaMemGetInfo.");
  m.attr("architectures") = std::string(NEARZERO_CUDA_ARCHITECTURES);
  // The toolkit version of the CUDA runtime linked (statically) into this module.
  m.attr("runtime_version") = std::string(NEARZERO_CUDA_RUNTIME_VERSION);
  nearzero::bind_cuda_scans(m);
  nearzero::bind_cuda_elementwise(m);
  nearzero::bind_cuda_matmul(m);
  nearzero::bind_cuda_conv(m);
}
