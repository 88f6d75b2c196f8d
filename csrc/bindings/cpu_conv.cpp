// Bindings of the convolution classify kernels: `conv_classify_<t>`,
// `conv_backprop_filter_classify_<t>` and `conv_backprop_input_classify_<t>`. Python
// (nearzero/ops/conv.py and the CPU backend) resolves the geometry and allocates results; this
// file re-checks what memory safety depends on (dtypes, contiguity, element counts) and
// releases the GIL.
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

namespace {

// The three tensors of a convolution: the input (x), the output (d_out) and the kernel.
enum class Tensor { kInput, kOutput, kKernel };

int64_t elements(const ConvGeometry &g, Tensor t) {
  if (t == Tensor::kKernel)
    return g.kernel_size[0] * g.kernel_size[1] * g.kernel_size[2] * (g.in_channels / g.groups) *
           g.out_channels;
  const bool input = t == Tensor::kInput;
  const int64_t *size = input ? g.in_size : g.out_size;
  return g.batch * (input ? g.in_channels : g.out_channels) * size[0] * size[1] * size[2];
}

template <typename T>
const T *operand(const py::array &a, const ConvGeometry &g, Tensor t, const char *name) {
  if (!has_dtype<T>(a) || !(a.flags() & py::array::c_style))
    throw std::invalid_argument(std::string("nearzero: ") + name +
                                " must be a C-contiguous array of the compute dtype");
  if (int64_t(a.size()) != elements(g, t))
    throw std::invalid_argument(std::string("nearzero: ") + name +
                                " does not match the convolution geometry");
  return static_cast<const T *>(a.data());
}

// One op: its kernel, which tensors its two operands are (named so in errors) and which tensor
// its cells are.
template <typename T>
using ConvKernel = void (*)(const ConvGeometry &, const T *, const T *, T, T,
                            const ClassifyOutput &);
template <typename T> struct ConvOp {
  ConvKernel<T> kernel;
  Tensor first, second, cells;
  const char *first_name, *second_name;
};

template <typename T>
void run_conv(const ConvOp<T> &op, const py::array &first, const py::array &second,
              const std::vector<int64_t> &geometry, double first_threshold,
              double second_threshold, const CpuResultSpec &result) {
  DenormalsKept denormals;  // thresholds converted to T keep subnormals
  const ConvGeometry g = conv_geometry_from_args(geometry);
  const T *a = operand<T>(first, g, op.first, op.first_name);
  const T *b = operand<T>(second, g, op.second, op.second_name);
  auto out = cpu_output(result, 9, sizeof(T) == 8, elements(g, op.cells));
  run_released([&] { op.kernel(g, a, b, T(first_threshold), T(second_threshold), out); });
}

template <typename T>
void conv_classify(py::array x, py::array kernel, std::vector<int64_t> geometry, double tx,
                   double tk, const CpuResultSpec &result) {
  run_conv<T>({&conv_classify_cpu<T>, Tensor::kInput, Tensor::kKernel, Tensor::kOutput, "inputs",
               "kernel"},
              x, kernel, geometry, tx, tk, result);
}

template <typename T>
void conv_backprop_filter_classify(py::array x, py::array d_out, std::vector<int64_t> geometry,
                                   double tx, double td, const CpuResultSpec &result) {
  run_conv<T>({&conv_backprop_filter_classify_cpu<T>, Tensor::kInput, Tensor::kOutput,
               Tensor::kKernel, "x", "d_out"},
              x, d_out, geometry, tx, td, result);
}

template <typename T>
void conv_backprop_input_classify(py::array d_out, py::array kernel, std::vector<int64_t> geometry,
                                  double td, double tk, const CpuResultSpec &result) {
  run_conv<T>({&conv_backprop_input_classify_cpu<T>, Tensor::kOutput, Tensor::kKernel,
               Tensor::kInput, "d_out", "kernel"},
              d_out, kernel, geometry, td, tk, result);
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
