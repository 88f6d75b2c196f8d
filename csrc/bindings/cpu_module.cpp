// pybind11 bindings of the CPU kernels as `nearzero._core`. Python (nearzero.ops) validates
// arguments, allocates results and calls these; the kernels never see Python.
#include "cpu/cpu_kernels.h"
#include "cpu/elementwise_cpu.h"
#include "cpu/matmul_cpu.h"
#include "cpu/threshold_cpu.h"
#include "bindings/cpu_bindings.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace py = pybind11;

namespace nearzero {

ClassifyOutput make_output(int mode, int pairs, py::array &counts, py::array &sums,
                           int64_t cell_stride, int64_t pair_stride, py::object mask,
                           int64_t channels, int64_t channel_inner, bool double_sums) {
  ClassifyOutput out;
  if (mode < 0 || mode > 2) throw std::invalid_argument("nearzero: unknown reduce mode");
  out.mode = static_cast<ReduceMode>(mode);
  out.pairs = pairs;
  const bool reduced = out.mode != ReduceMode::kNone;
  if (!(counts.flags() & py::array::c_style) || !(sums.flags() & py::array::c_style) ||
      !counts.writeable() || !sums.writeable())
    throw std::invalid_argument("nearzero: result buffers must be writeable and C-contiguous");
  if (counts.dtype().is(py::dtype::of<int64_t>()))
    out.counts_int64 = true;
  else if (!counts.dtype().is(py::dtype::of<int32_t>()) || reduced)
    throw std::invalid_argument("nearzero: counts buffer has the wrong dtype");
  const bool sums_double = sums.dtype().is(py::dtype::of<double>());
  if (reduced ? !sums_double : (sums_double != double_sums ||
                                (!sums_double && !sums.dtype().is(py::dtype::of<float>()))))
    throw std::invalid_argument("nearzero: sums buffer has the wrong dtype");
  out.counts = counts.mutable_data();
  out.sums = sums.mutable_data();
  out.cell_stride = cell_stride;
  out.pair_stride = pair_stride;
  out.channels = channels;
  out.channel_inner = channel_inner;
  if (!mask.is_none()) {
    auto m = mask.cast<py::array>();
    if (!m.dtype().is(py::dtype::of<bool>()) || !(m.flags() & py::array::c_style))
      throw std::invalid_argument("nearzero: mask must be a C-contiguous bool array");
    out.mask = static_cast<const uint8_t *>(m.data());
  }
  return out;
}

namespace {

template <typename T> py::tuple order_statistics(py::array_t<T, py::array::c_style> x, double fraction) {
  AbsOrderStatistics<T> r;
  {
    py::gil_scoped_release release;
    r = select_abs_order_statistics<T>(x.data(), x.size(), fraction);
  }
  return py::make_tuple(double(r.low), double(r.high), r.count, r.nan_count);
}

template <typename T>
void tensor_classify(py::array x, std::vector<int64_t> shape, double threshold, int mode,
                     py::array counts, py::array sums, int64_t cell_stride, int64_t pair_stride,
                     py::object mask, int64_t channels, int64_t channel_inner) {
  auto out = make_output(mode, 3, counts, sums, cell_stride, pair_stride, mask, channels,
                         channel_inner, sizeof(T) == 8);
  auto in = strided_input<T>(x);
  py::gil_scoped_release release;
  tensor_classify_cpu<T>(in, shape, T(threshold), out);
}

template <typename T>
void multiply_classify(py::array x, py::array y, std::vector<int64_t> shape, double tx,
                       double ty, int mode, py::array counts, py::array sums,
                       int64_t cell_stride, int64_t pair_stride, py::object mask,
                       int64_t channels, int64_t channel_inner) {
  auto out = make_output(mode, 9, counts, sums, cell_stride, pair_stride, mask, channels,
                         channel_inner, sizeof(T) == 8);
  auto xin = strided_input<T>(x), yin = strided_input<T>(y);
  py::gil_scoped_release release;
  multiply_classify_cpu<T>(xin, yin, shape, T(tx), T(ty), out);
}

template <typename T>
void matmul_classify(py::array x, py::array y, py::array_t<int64_t, py::array::c_style> x_offsets,
                     py::array_t<int64_t, py::array::c_style> y_offsets,
                     std::vector<int64_t> dims, std::vector<int64_t> strides, double tx,
                     double ty, int mode, py::array counts, py::array sums,
                     int64_t cell_stride, int64_t pair_stride, py::object mask,
                     int64_t channels, int64_t channel_inner) {
  if (dims.size() != 4 || strides.size() != 4)
    throw std::invalid_argument("nearzero: matmul needs 4 dims and 4 strides");
  auto out = make_output(mode, 9, counts, sums, cell_stride, pair_stride, mask, channels,
                         channel_inner, sizeof(T) == 8);
  MatmulProblem<T> p{static_cast<const T *>(x.data()), static_cast<const T *>(y.data()),
                     x_offsets.data(), y_offsets.data(), dims[0], dims[1], dims[2], dims[3],
                     strides[0], strides[1], strides[2], strides[3], T(tx), T(ty)};
  py::gil_scoped_release release;
  matmul_classify_cpu<T>(p, out);
}

template <typename T> void bind_typed(py::module_ &m, const std::string &suffix) {
  m.def(("abs_order_statistics_" + suffix).c_str(), &order_statistics<T>);
  m.def(("tensor_classify_" + suffix).c_str(), &tensor_classify<T>);
  m.def(("multiply_classify_" + suffix).c_str(), &multiply_classify<T>);
  m.def(("matmul_classify_" + suffix).c_str(), &matmul_classify<T>);
}

}  // namespace
}  // namespace nearzero

PYBIND11_MODULE(_core, m) {
  m.doc() = "nearzero CPU kernels (private; use the nearzero package)";
  nearzero::bind_typed<float>(m, "f32");
  nearzero::bind_typed<double>(m, "f64");
  nearzero::bind_conv(m);
  nearzero::bind_analysis(m);
  nearzero::bind_statistics(m);
  m.attr("version") = NEARZERO_VERSION;
#if defined(NEARZERO_HAVE_OPENMP)
  m.attr("openmp") = true;
#else
  m.attr("openmp") = false;
#endif
  m.def("max_threads", &nearzero::max_threads_for_python);
  // The CPU level is chosen once, here; a bad NEARZERO_CPU_ISA fails the import with the reason.
  nearzero::select_cpu_level(std::getenv("NEARZERO_CPU_ISA"));
  m.def("cpu_levels", [] {
    const nearzero::CpuLevels levels = nearzero::cpu_levels();
    py::dict d;
    d["built"] = levels.built;
    d["supported"] = levels.supported;
    d["selected"] = levels.selected;
    return d;
  });
}
