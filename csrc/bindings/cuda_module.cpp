// pybind11 bindings of the CUDA kernels as `nearzero._cuda`. Takes raw device pointers and a
// stream handle (from __cuda_array_interface__ / torch / CuPy in Python); never links libtorch.
#include "cuda/elementwise_cuda.h"

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

namespace py = pybind11;

namespace {

template <typename T>
void tensor_classify(std::uintptr_t x, int64_t n, double threshold, std::uintptr_t counts,
                     std::uintptr_t sums, std::uintptr_t stream) {
  py::gil_scoped_release release;
  nearzero::tensor_classify_cuda<T>(reinterpret_cast<const T *>(x), n, T(threshold),
                                    reinterpret_cast<int32_t *>(counts),
                                    reinterpret_cast<T *>(sums), reinterpret_cast<void *>(stream));
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "nearzero CUDA kernels (private; use the nearzero package)";
  m.def("tensor_classify_f32", &tensor_classify<float>);
  m.def("tensor_classify_f64", &tensor_classify<double>);
  m.def("device_count", &nearzero::cuda_device_count);
  m.attr("architectures") = std::string(NEARZERO_CUDA_ARCHITECTURES);
}
