// Bindings of the elementwise CUDA kernels (tensor_classify, multiply_classify).
#include "bindings/cuda_bindings.h"
#include "cuda/device_info_cuda.h"
#include "cuda/elementwise_cuda.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

namespace py = pybind11;

namespace nearzero {
namespace {

ElementwiseGeometry geometry_from(const std::vector<int64_t> &shape,
                                  const std::vector<int64_t> &x_strides,
                                  const std::vector<int64_t> &y_strides) {
  if (shape.size() > size_t(ElementwiseGeometry::kMaxDims))
    throw std::invalid_argument("nearzero: too many dimensions for the CUDA elementwise kernel "
                                "after merging (at most " +
                                std::to_string(ElementwiseGeometry::kMaxDims) + ")");
  if (x_strides.size() != shape.size() || y_strides.size() != shape.size())
    throw std::invalid_argument("nearzero: strides and shape differ in length");
  ElementwiseGeometry g;
  g.rank = int(shape.size());
  for (size_t d = 0; d < shape.size(); ++d) {
    g.shape[d] = shape[d];
    g.x_strides[d] = x_strides[d];
    g.y_strides[d] = y_strides[d];
  }
  return g;
}

template <typename T>
void tensor_classify(int device, std::uintptr_t x, std::vector<int64_t> shape,
                     std::vector<int64_t> strides, double threshold, const CudaResultSpec &result,
                     std::uintptr_t stream) {
  const ElementwiseGeometry g = geometry_from(shape, strides, strides);
  const ClassifyOutput out = cuda_output(result, 3);
  py::gil_scoped_release release;
  CudaDeviceGuard guard(device);
  tensor_classify_cuda<T>(device_pointer<const T>(x), g, T(threshold), out,
                          reinterpret_cast<void *>(stream));
}

template <typename T>
void multiply_classify(int device, std::uintptr_t x, std::uintptr_t y, std::vector<int64_t> shape,
                       std::vector<int64_t> x_strides, std::vector<int64_t> y_strides, double tx,
                       double ty, const CudaResultSpec &result, std::uintptr_t stream) {
  const ElementwiseGeometry g = geometry_from(shape, x_strides, y_strides);
  const ClassifyOutput out = cuda_output(result, 9);
  py::gil_scoped_release release;
  CudaDeviceGuard guard(device);
  multiply_classify_cuda<T>(device_pointer<const T>(x), device_pointer<const T>(y), g, T(tx),
                            T(ty), out, reinterpret_cast<void *>(stream));
}

template <typename T> void bind_typed(py::module_ &m, const std::string &suffix) {
  m.def(("tensor_classify_" + suffix).c_str(), &tensor_classify<T>, py::arg("device"),
        py::arg("x"), py::arg("shape"), py::arg("strides"), py::arg("threshold"),
        py::arg("result"), py::arg("stream"));
  m.def(("multiply_classify_" + suffix).c_str(), &multiply_classify<T>, py::arg("device"),
        py::arg("x"), py::arg("y"), py::arg("shape"), py::arg("x_strides"),
        py::arg("y_strides"), py::arg("x_threshold"), py::arg("y_threshold"), py::arg("result"),
        py::arg("stream"));
}

}  // namespace

void bind_cuda_elementwise(py::module_ &m) {
  bind_typed<float>(m, "f32");
  bind_typed<double>(m, "f64");
  m.attr("elementwise_max_dims") = ElementwiseGeometry::kMaxDims;
}

}  // namespace nearzero
