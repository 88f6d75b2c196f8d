// Bindings of the convolution classify kernels: `conv_classify_<t>`,
// `conv_backprop_filter_classify_<t>` and `conv_backprop_input_classify_<t>`. Python
// (nearzero/ops/conv.py and the CPU backend) resolves the geometry and allocates results; this
// file re-checks what memory safety depends on (dtypes, contiguity, element counts) and
// releases the GIL.
#include "bindings/conv_geometry_args.h"
#include "bindings/cpu_bindings.h"
#include "cpu/parallel.h"
#include "cpu/conv_cpu.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace py = pybind11;

namespace nearzero {
namespace {

// The three tensors of a convolution: the input (x), the output (d_out, or the forward result)
// and the kernel.
enum class Tensor { kInput, kOutput, kKernel };

int64_t elements(const ConvGeometry &g, Tensor t) {
  if (t == Tensor::kKernel)
    return g.kernel_size[0] * g.kernel_size[1] * g.kernel_size[2] * (g.in_channels / g.groups) *
           g.out_channels;
  const bool input = t == Tensor::kInput;
  const int64_t *size = input ? g.in_size : g.out_size;
  return g.batch * (input ? g.in_channels : g.out_channels) * size[0] * size[1] * size[2];
}

const char *tensor_name(Tensor t) {
  return t == Tensor::kInput ? "x" : t == Tensor::kOutput ? "d_out" : "kernel";
}

template <typename T> const T *operand(const py::array &a, const ConvGeometry &g, Tensor t) {
  if (!has_dtype<T>(a) || !(a.flags() & py::array::c_style))
    throw std::invalid_argument(std::string("nearzero: ") + tensor_name(t) +
                                " must be a C-contiguous array of the compute dtype");
  if (int64_t(a.size()) != elements(g, t))
    throw std::invalid_argument(std::string("nearzero: ") + tensor_name(t) +
                                " does not match the convolution geometry");
  return static_cast<const T *>(a.data());
}

template <typename T>
using ConvKernel = void (*)(const ConvGeometry &, const T *, const T *, T, T,
                            const ClassifyOutput &);

// One op: its kernel, which tensors its two operands are and which tensor its cells are.
template <typename T, ConvKernel<T> Kernel, Tensor First, Tensor Second, Tensor Cells>
void conv_op(py::array first, py::array second, std::vector<int64_t> geometry,
             double first_threshold, double second_threshold, const CpuResultSpec &result) {
  DenormalsKept denormals;  // thresholds converted to T keep subnormals
  const ConvGeometry g = conv_geometry_from_args(geometry);
  const T *a = operand<T>(first, g, First);
  const T *b = operand<T>(second, g, Second);
  auto out = cpu_output(result, 9, sizeof(T) == 8, elements(g, Cells));
  run_released([&] { Kernel(g, a, b, T(first_threshold), T(second_threshold), out); });
}

template <typename T> void bind_conv_typed(py::module_ &m, const std::string &suffix) {
  constexpr Tensor x = Tensor::kInput, d_out = Tensor::kOutput, kernel = Tensor::kKernel;
  m.def(("conv_classify_" + suffix).c_str(), &conv_op<T, &conv_classify_cpu<T>, x, kernel, d_out>);
  m.def(("conv_backprop_filter_classify_" + suffix).c_str(),
        &conv_op<T, &conv_backprop_filter_classify_cpu<T>, x, d_out, kernel>);
  m.def(("conv_backprop_input_classify_" + suffix).c_str(),
        &conv_op<T, &conv_backprop_input_classify_cpu<T>, d_out, kernel, x>);
}

}  // namespace

void bind_conv(py::module_ &m) {
  bind_conv_typed<float>(m, "f32");
  bind_conv_typed<double>(m, "f64");
}

}  // namespace nearzero
