// Bindings of the CUDA convolution classify kernels (forward, kernel gradient, input gradient).
#include "bindings/conv_geometry_args.h"
#include "bindings/cuda_bindings.h"
#include "cuda/conv_cuda.h"
#include "cuda/device_info_cuda.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace py = pybind11;

namespace nearzero {
namespace {

ConvClassify op_from(int op) {
  if (op < 0 || op > 2) throw std::invalid_argument("nearzero: unknown convolution op");
  return static_cast<ConvClassify>(op);
}

template <typename T>
int64_t scratch_doubles(int device, int op, std::vector<int64_t> geometry, bool has_infinity) {
  const ConvGeometry g = conv_geometry_from_args(geometry);
  py::gil_scoped_release release;
  CudaDeviceGuard guard(device);
  return conv_scratch_doubles<T>(op_from(op), g, has_infinity);
}

// op: 0 forward (inputs, kernel), 1 kernel gradient (x, d_out), 2 input gradient (d_out, kernel).
template <typename T>
void conv_classify(int device, int op, std::vector<int64_t> geometry, std::uintptr_t first,
                   std::uintptr_t second, double first_threshold, double second_threshold,
                   bool has_infinity, std::uintptr_t scratch, int64_t scratch_size,
                   const OutputSpec &output, std::uintptr_t stream) {
  const ConvGeometry g = conv_geometry_from_args(geometry);
  const ConvClassify which = op_from(op);
  const DeviceOutput out = device_output_from(output);
  py::gil_scoped_release release;
  CudaDeviceGuard guard(device);
  conv_classify_cuda<T>(which, g, device_pointer<const T>(first), device_pointer<const T>(second),
                        T(first_threshold), T(second_threshold), has_infinity, out,
                        device_pointer<double>(scratch), scratch_size,
                        reinterpret_cast<void *>(stream));
}

template <typename T> void bind_typed(py::module_ &m, const std::string &suffix) {
  m.def(("conv_classify_" + suffix).c_str(), &conv_classify<T>, py::arg("device"), py::arg("op"),
        py::arg("geometry"), py::arg("first"), py::arg("second"), py::arg("first_threshold"),
        py::arg("second_threshold"), py::arg("has_infinity"), py::arg("scratch"),
        py::arg("scratch_doubles"), py::arg("output"), py::arg("stream"));
  m.def(("conv_scratch_doubles_" + suffix).c_str(), &scratch_doubles<T>, py::arg("device"),
        py::arg("op"), py::arg("geometry"), py::arg("has_infinity"));
}

}  // namespace

void bind_cuda_conv(py::module_ &m) {
  bind_typed<float>(m, "f32");
  bind_typed<double>(m, "f64");
}

}  // namespace nearzero
