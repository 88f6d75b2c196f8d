// Bindings of the convolution classify kernels: `conv_classify_<t>`,
// `conv_backprop_filter_classify_<t>` and `conv_backprop_input_classify_<t>`. Python
// (nearzero/ops/conv.py) resolves the geometry and allocates results; this file re-checks what
// memory safety depends on (dtypes, contiguity, element counts) and releases the GIL.
#include "bindings/conv_geometry_args.h"
#include "bindings/cpu_bindings.h"
#include "common/parallel.h"
#include "cpu/conv_cpu.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace py = pybind11;

namespace nearzero {

int max_threads_for_python() { return max_threads(); }

namespace {

int64_t activation_elements(const ConvGeometry &g, const int64_t size[3], int64_t channels) {
  return g.batch * channels * size[0] * size[1] * size[2];
}

int64_t kernel_elements(const ConvGeometry &g) {
  return g.kernel_size[0] * g.kernel_size[1] * g.kernel_size[2] * (g.in_channels / g.groups) *
         g.out_channels;
}

template <typename T> const T *operand(const py::array &a, int64_t elements, const char *name) {
  if (!has_dtype<T>(a) || !(a.flags() & py::array::c_style))
    throw std::invalid_argument(std::string("nearzero: ") + name +
                                " must be a C-contiguous array of the compute dtype");
  if (int64_t(a.size()) != elements)
    throw std::invalid_argument(std::string("nearzero: ") + name +
                                " does not match the convolution geometry");
  return static_cast<const T *>(a.data());
}

template <typename T>
void conv_classify(py::array x, py::array kernel, std::vector<int64_t> geometry, double tx,
                   double tk, int mode, py::array counts, py::array sums, int64_t cell_stride,
                   int64_t pair_stride, py::object mask, int64_t channels,
                   int64_t channel_inner) {
  DenormalsKept denormals;  // thresholds converted to T keep subnormals
  const ConvGeometry g = conv_geometry_from_args(geometry);
  const T *xp = operand<T>(x, activation_elements(g, g.in_size, g.in_channels), "inputs");
  const T *kp = operand<T>(kernel, kernel_elements(g), "kernel");
  auto out = make_output(mode, 9, counts, sums, cell_stride, pair_stride, mask, channels,
                         channel_inner, sizeof(T) == 8,
                         activation_elements(g, g.out_size, g.out_channels));
  run_released([&] { conv_classify_cpu<T>(g, xp, kp, T(tx), T(tk), out); });
}

template <typename T>
void conv_backprop_filter_classify(py::array x, py::array d_out, std::vector<int64_t> geometry,
                                   double tx, double td, int mode, py::array counts,
                                   py::array sums, int64_t cell_stride, int64_t pair_stride,
                                   py::object mask, int64_t channels, int64_t channel_inner) {
  DenormalsKept denormals;  // thresholds converted to T keep subnormals
  const ConvGeometry g = conv_geometry_from_args(geometry);
  const T *xp = operand<T>(x, activation_elements(g, g.in_size, g.in_channels), "x");
  const T *dp = operand<T>(d_out, activation_elements(g, g.out_size, g.out_channels), "d_out");
  auto out = make_output(mode, 9, counts, sums, cell_stride, pair_stride, mask, channels,
                         channel_inner, sizeof(T) == 8, kernel_elements(g));
  run_released([&] { conv_backprop_filter_classify_cpu<T>(g, xp, dp, T(tx), T(td), out); });
}

template <typename T>
void conv_backprop_input_classify(py::array d_out, py::array kernel, std::vector<int64_t> geometry,
                                  double td, double tk, int mode, py::array counts,
                                  py::array sums, int64_t cell_stride, int64_t pair_stride,
                                  py::object mask, int64_t channels, int64_t channel_inner) {
  DenormalsKept denormals;  // thresholds converted to T keep subnormals
  const ConvGeometry g = conv_geometry_from_args(geometry);
  const T *dp = operand<T>(d_out, activation_elements(g, g.out_size, g.out_channels), "d_out");
  const T *kp = operand<T>(kernel, kernel_elements(g), "kernel");
  auto out = make_output(mode, 9, counts, sums, cell_stride, pair_stride, mask, channels,
                         channel_inner, sizeof(T) == 8,
                         activation_elements(g, g.in_size, g.in_channels));
  run_released([&] { conv_backprop_input_classify_cpu<T>(g, dp, kp, T(td), T(tk), out); });
}

template <typename T> void bind_conv_typed(py::module_ &m, const std::string &suffix) {
  m.def(("conv_classify_" + suffix).c_str(), &conv_classify<T>);
  m.def(("conv_backprop_filter_classify_" + suffix).c_str(), &conv_backprop_filter_classify<T>);
  m.def(("conv_backprop_input_classify_" + suffix).c_str(), &conv_backprop_input_classify<T>);
}

}  // namespace

void bind_conv(py::module_ &m) {
  bind_conv_typed<float>(m, "f32");
  bind_conv_typed<double>(m, "f64");
}

}  // namespace nearzero
