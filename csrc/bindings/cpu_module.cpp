// pybind11 bindings of the CPU kernels as `nearzero._core`. Python (nearzero.ops and the CPU
// backend, nearzero/backends/cpu.py) validates arguments, allocates results and calls these;
// the bindings re-check what memory safety depends on; the kernels never see Python.
#include "cpu/cpu_kernels.h"
#include "cpu/elementwise_cpu.h"
#include "cpu/matmul_cpu.h"
#include "cpu/threshold_cpu.h"
#include "bindings/cpu_bindings.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>

namespace py = pybind11;

namespace nearzero {

ClassifyOutput cpu_output(const CpuResultSpec &spec, int pairs, bool double_sums,
                          int64_t cells) {
  ClassifyOutput out = spec.layout(pairs);
  py::array counts = spec.counts, sums = spec.sums;
  const bool reduced = out.mode != ReduceMode::kNone;
  if (!(counts.flags() & py::array::c_style) || !(sums.flags() & py::array::c_style) ||
      !counts.writeable() || !sums.writeable())
    throw std::invalid_argument("nearzero: result buffers must be writeable and C-contiguous");
  const bool counts_int64 = counts.dtype().is(py::dtype::of<int64_t>());
  if (counts_int64 != spec.counts_int64 ||
      (!counts_int64 && (reduced || !counts.dtype().is(py::dtype::of<int32_t>()))))
    throw std::invalid_argument("nearzero: counts buffer has the wrong dtype");
  const bool sums_double = sums.dtype().is(py::dtype::of<double>());
  if (reduced ? !sums_double : (sums_double != double_sums ||
                                (!sums_double && !sums.dtype().is(py::dtype::of<float>()))))
    throw std::invalid_argument("nearzero: sums buffer has the wrong dtype");
  // Every cell the kernel writes (or reduces into) lies inside the buffers it was given.
  using Wide = __int128;
  if (cells < 0 || (cells > 0 && (out.channels < 1 || out.channel_inner < 1)))
    throw std::invalid_argument("nearzero: invalid result layout");
  const Wide needed =
      !reduced ? (cells == 0 ? 0 : Wide(cells - 1) * out.cell_stride +
                                       Wide(pairs - 1) * out.pair_stride + 1)
               : Wide(out.mode == ReduceMode::kAll ? 1 : out.channels) * pairs;
  if (Wide(counts.size()) < needed || Wide(sums.size()) < needed ||
      (reduced && (Wide(counts.size()) != needed || Wide(sums.size()) != needed)))
    throw std::invalid_argument("nearzero: result buffers do not match the result's size");
  out.counts = counts.mutable_data();
  out.sums = sums.mutable_data();
  if (spec.mask) {
    const py::array &m = *spec.mask;
    if (!py::isinstance<py::array_t<bool>>(m) || !(m.flags() & py::array::c_style) ||
        int64_t(m.size()) != cells)
      throw std::invalid_argument("nearzero: mask must be a C-contiguous bool array, one per cell");
    out.mask = static_cast<const uint8_t *>(m.data());
  }
  return out;
}

int max_threads_for_python() { return max_threads(); }

int64_t cell_count(const std::vector<int64_t> &shape) {
  int64_t cells = 1;
  for (int64_t size : shape) {
    if (size < 0 || (size > 0 && cells > std::numeric_limits<int64_t>::max() / size))
      throw std::invalid_argument("nearzero: invalid or too large a shape");
    cells *= size;
  }
  return cells;
}

// The kernels' interrupt poll: runs Python's signal handlers (briefly taking the GIL); a
// handler's exception (KeyboardInterrupt) stays pending for run_released to raise.
bool python_interrupt_pending() {
  const PyGILState_STATE state = PyGILState_Ensure();
  const bool pending = PyErr_CheckSignals() != 0;
  PyGILState_Release(state);
  return pending;
}

namespace {

template <typename T>
py::tuple order_statistics(py::array_t<T, py::array::c_style> x, double fraction, int64_t repeat) {
  if (repeat < 1) throw std::invalid_argument("nearzero: repeat must be positive");
  if (x.size() > 0 && repeat > std::numeric_limits<int64_t>::max() / int64_t(x.size()))
    throw std::invalid_argument("nearzero: repeated size overflows int64");
  AbsOrderStatistics<T> r;
  run_released([&] { r = select_abs_order_statistics<T>(x.data(), x.size(), fraction, repeat); });
  volatile T kept_low = r.low, kept_high = r.high;
  volatile double low, high;
  {
    DenormalsKept denormals;  // a subnormal T must not read as 0 on its way to double
    low = double(kept_low);
    high = double(kept_high);
  }
  return py::make_tuple(double(low), double(high), r.count, r.nan_count);
}

// `value` rounded to T (to nearest), subnormals kept whatever the calling thread's mode.
template <typename T> double round_to(double value) {
  volatile double in = value, result;
  {
    DenormalsKept denormals;
    result = double(T(in));
  }
  return result;
}

// 0.5 * (low + high) in T as the original computes a midpoint percentile (halves first where the
// sum overflows), with subnormals kept whatever the calling thread's mode.
template <typename T> double abs_midpoint(double low, double high) {
  // volatile: every conversion and add happens after the mode is set, not hoisted before it
  volatile double in_low = low, in_high = high, result;
  {
    DenormalsKept denormals;
    const T lo = T(in_low), hi = T(in_high);
    const T total = lo + hi;
    const bool keep = std::isfinite(total) || !std::isfinite(hi);
    result = double(keep ? T(0.5) * total : T(0.5) * lo + T(0.5) * hi);
  }
  return result;
}

// Checks that a matmul operand's reads (rows x cols with the given element strides, from each
// batch offset) stay inside the elements the array `a` itself spans.
template <typename T>
void check_matmul_reads(const py::array &a, const py::array_t<int64_t, py::array::c_style> &offsets,
                        int64_t batches, int64_t rows, int64_t cols, int64_t row_stride,
                        int64_t col_stride, const char *name) {
  if (!has_dtype<T>(a))
    throw std::invalid_argument(std::string("nearzero: ") + name + " has the wrong dtype");
  if (offsets.ndim() != 1 || int64_t(offsets.size()) != batches)
    throw std::invalid_argument(std::string("nearzero: ") + name + " needs one offset per batch");
  if (batches == 0 || rows == 0 || cols == 0) return;
  int64_t lowest, highest;
  if (!element_span<T>(a, lowest, highest))
    throw std::invalid_argument(std::string("nearzero: ") + name + " is empty");
  using Wide = __int128;
  const Wide r = Wide(rows - 1) * row_stride, c = Wide(cols - 1) * col_stride;
  const Wide low = (r < 0 ? r : 0) + (c < 0 ? c : 0), high = (r > 0 ? r : 0) + (c > 0 ? c : 0);
  for (int64_t b = 0; b < batches; ++b) {
    const Wide o = offsets.data()[b];
    if (o + low < lowest || o + high > highest)
      throw std::invalid_argument(std::string("nearzero: ") + name +
                                  " strides and offsets reach outside the array");
  }
}

template <typename T>
void tensor_classify(py::array x, std::vector<int64_t> shape, double threshold,
                     const CpuResultSpec &result) {
  DenormalsKept denormals;  // thresholds converted to T keep subnormals
  auto out = cpu_output(result, 3, sizeof(T) == 8, cell_count(shape));
  auto in = strided_input<T>(x, shape);
  run_released([&] { tensor_classify_cpu<T>(in, shape, T(threshold), out); });
}

template <typename T>
void multiply_classify(py::array x, py::array y, std::vector<int64_t> shape, double tx,
                       double ty, const CpuResultSpec &result) {
  DenormalsKept denormals;  // thresholds converted to T keep subnormals
  auto out = cpu_output(result, 9, sizeof(T) == 8, cell_count(shape));
  auto xin = strided_input<T>(x, shape), yin = strided_input<T>(y, shape);
  run_released([&] { multiply_classify_cpu<T>(xin, yin, shape, T(tx), T(ty), out); });
}

template <typename T>
void matmul_classify(py::array x, py::array y, py::array_t<int64_t, py::array::c_style> x_offsets,
                     py::array_t<int64_t, py::array::c_style> y_offsets,
                     std::vector<int64_t> dims, std::vector<int64_t> strides, double tx,
                     double ty, const CpuResultSpec &result) {
  DenormalsKept denormals;  // thresholds converted to T keep subnormals
  if (dims.size() != 4 || strides.size() != 4)
    throw std::invalid_argument("nearzero: matmul needs 4 dims and 4 strides");
  for (int64_t d : dims)
    if (d < 0) throw std::invalid_argument("nearzero: matmul dims must not be negative");
  check_matmul_reads<T>(x, x_offsets, dims[0], dims[1], dims[2], strides[0], strides[1], "x");
  check_matmul_reads<T>(y, y_offsets, dims[0], dims[2], dims[3], strides[2], strides[3], "y");
  auto out = cpu_output(result, 9, sizeof(T) == 8, cell_count({dims[0], dims[1], dims[3]}));
  MatmulProblem<T> p{static_cast<const T *>(x.data()), static_cast<const T *>(y.data()),
                     x_offsets.data(), y_offsets.data(), dims[0], dims[1], dims[2], dims[3],
                     strides[0], strides[1], strides[2], strides[3], T(tx), T(ty)};
  run_released([&] { matmul_classify_cpu<T>(p, out); });
}

template <typename T> void bind_typed(py::module_ &m, const std::string &suffix) {
  m.def(("abs_order_statistics_" + suffix).c_str(), &order_statistics<T>);
  m.def(("abs_midpoint_" + suffix).c_str(), &abs_midpoint<T>);
  m.def(("round_to_" + suffix).c_str(), &round_to<T>);
  m.def(("tensor_classify_" + suffix).c_str(), &tensor_classify<T>);
  m.def(("multiply_classify_" + suffix).c_str(), &multiply_classify<T>);
  m.def(("matmul_classify_" + suffix).c_str(), &matmul_classify<T>);
}

}  // namespace
}  // namespace nearzero

PYBIND11_MODULE(_core, m) {
  m.doc() = "nearzero CPU kernels (private; use the nearzero package)";
  nearzero::register_fork_handler();
  nearzero::interrupt_check() = &nearzero::python_interrupt_pending;
  // First: the signatures of the bindings below name the class.
  nearzero::bind_result_spec<py::array, std::optional<py::array>>(m);
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
