// Bindings of the CUDA convolution classify kernels, one per op under the CPU module's names:
// `conv_classify_<t>` (forward), `conv_backprop_filter_classify_<t>` (kernel gradient) and
// `conv_backprop_input_classify_<t>` (input gradient), each with its `*_scratch_doubles_<t>`.
#include "bindings/conv_geometry_args.h"
#include "bindings/cuda_bindings.h"
#include "cuda/conv_cuda.h"
#include "cuda/device_info_cuda.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

namespace py = pybind11;

namespace nearzero {
namespace {

template <typename Op, typename T>
int64_t scratch_doubles(int device, std::vector<int64_t> geometry, bool has_infinity) {
  const ConvGeometry g = conv_geometry_from_args(geometry);
  py::gil_scoped_release release;
  CudaDeviceGuard guard(device);
  return conv_scratch_doubles<Op, T>(g, has_infinity);
}

template <typename Op, typename T>
void classify(int device, std::vector<int64_t> geometry, std::uintptr_t first,
              std::uintptr_t second, double first_threshold, double second_threshold,
              bool has_infinity, std::uintptr_t scratch, int64_t scratch_size,
              const CudaResultSpec &result, std::uintptr_t stream) {
  const ConvGeometry g = conv_geometry_from_args(geometry);
  const ClassifyOutput out = cuda_output(result, 9);
  py::gil_scoped_release release;
  CudaDeviceGuard guard(device);
  conv_classify_cuda<Op, T>(g, device_pointer<const T>(first), device_pointer<const T>(second),
                            T(first_threshold), T(second_threshold), has_infinity, out,
                            device_pointer<double>(scratch), scratch_size,
                            reinterpret_cast<void *>(stream));
}

// Binds one op as `name`_<suffix> and its scratch size as `scratch_name`_<suffix>; `first` and
// `second` name its operands.
template <typename Op, typename T>
void bind_op(py::module_ &m, const std::string &name, const std::string &scratch_name,
             const std::string &suffix, const std::string &first, const std::string &second) {
  const std::string first_threshold = first + "_threshold";
  const std::string second_threshold = second + "_threshold";
  m.def((name + "_" + suffix).c_str(), &classify<Op, T>, py::arg("device"), py::arg("geometry"),
        py::arg(first.c_str()), py::arg(second.c_str()), py::arg(first_threshold.c_str()),
        py::arg(second_threshold.c_str()), py::arg("has_infinity"), py::arg("scratch"),
        py::arg("scratch_doubles"), py::arg("result"), py::arg("stream"));
  m.def((scratch_name + "_" + suffix).c_str(), &scratch_doubles<Op, T>, py::arg("device"),
        py::arg("geometry"), py::arg("has_infinity"));
}

template <typename T> void bind_typed(py::module_ &m, const std::string &suffix) {
  bind_op<ConvForward, T>(m, "conv_classify", "conv_scratch_doubles", suffix, "x", "kernel");
  bind_op<ConvFilterGrad, T>(m, "conv_backprop_filter_classify",
                             "conv_backprop_filter_scratch_doubles", suffix, "x", "d_out");
  bind_op<ConvInputGrad, T>(m, "conv_backprop_input_classify",
                            "conv_backprop_input_scratch_doubles", suffix, "d_out", "kernel");
}

}  // namespace

void bind_cuda_conv(py::module_ &m) {
  bind_typed<float>(m, "f32");
  bind_typed<double>(m, "f64");
}

}  // namespace nearzero
