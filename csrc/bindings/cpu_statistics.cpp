// Binding of the per-step tensor statistics (cpu/tensor_statistics_cpu.h). The tensor comes as
// its address, dtype code, shape and element strides, read in place: Python
// (nearzero/report/tensor_statistics.py) passes them from a live CPU torch tensor that it holds
// for the call. Five float64 values go to out[offset:offset + 5]; the batch form takes several
// tensors' arguments in one call.
#include "bindings/cpu_bindings.h"
#include "cpu/tensor_statistics_cpu.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cmath>
#include <stdexcept>
#include <tuple>
#include <vector>

namespace py = pybind11;

namespace nearzero {
namespace {

using Entry = std::tuple<uintptr_t, int, std::vector<int64_t>, std::vector<int64_t>, int, double,
                         int64_t>;

// One tensor's arguments, checked, as the kernel takes them.
StatisticsInput checked_input(uintptr_t address, int dtype, std::vector<int64_t> shape,
                              std::vector<int64_t> strides, int unit_dim, double tolerance,
                              int64_t out_size, int64_t offset) {
  if (dtype < 0 || dtype > 3)
    throw std::invalid_argument("nearzero: tensor statistics take dtype codes 0-3");
  if (shape.size() != strides.size())
    throw std::invalid_argument("nearzero: tensor statistics need one stride per dimension");
  if (unit_dim < -1 || unit_dim >= int(shape.size()))
    throw std::invalid_argument("nearzero: the unit dimension is not one of the tensor's");
  int64_t size = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] < 0 || strides[d] < 0)
      throw std::invalid_argument("nearzero: tensor statistics need non-negative sizes and strides");
    size *= shape[d];
  }
  if (size > 0 && address == 0)
    throw std::invalid_argument("nearzero: tensor statistics of a tensor without data");
  if (!std::isfinite(tolerance) && tolerance >= 0)
    throw std::invalid_argument("nearzero: the near-zero tolerance must be finite");
  if (offset < 0 || offset + 5 > out_size)
    throw std::invalid_argument("nearzero: tensor statistics need 5 writeable float64 slots");
  return {reinterpret_cast<const void *>(address), StatisticsDtype(dtype), std::move(shape),
          std::move(strides), unit_dim};
}

// The float64 slots of `out`, a one-dimensional writeable float64 NumPy array (taken as it is:
// converting it to array_t would make a new array object on every call).
struct Slots {
  double *data;
  int64_t size, stride;  // in values
  double &operator[](int64_t i) const { return data[i * stride]; }
};

Slots writeable(py::array &out) {
  if (out.ndim() != 1 || !out.writeable() || !out.dtype().equal(py::dtype::of<double>()) ||
      out.strides(0) % int64_t(sizeof(double)) != 0)
    throw std::invalid_argument("nearzero: tensor statistics need 5 writeable float64 slots");
  return {static_cast<double *>(out.mutable_data()), out.shape(0),
          out.strides(0) / int64_t(sizeof(double))};
}

void store(const TensorStatistics &s, const Slots &o, int64_t offset) {
  o[offset] = s.squared_norm;
  o[offset + 1] = double(s.units_alive);
  o[offset + 2] = double(s.units);
  o[offset + 3] = s.finite < 0 ? NAN : double(s.finite);
  o[offset + 4] = s.near_zero < 0 ? NAN : double(s.near_zero);
}

void tensor_statistics(uintptr_t address, int dtype, std::vector<int64_t> shape,
                       std::vector<int64_t> strides, int unit_dim, double tolerance,
                       py::array out, int64_t offset) {
  auto o = writeable(out);
  const StatisticsInput in = checked_input(address, dtype, std::move(shape), std::move(strides),
                                           unit_dim, tolerance, o.size, offset);
  TensorStatistics s;
  {
    py::gil_scoped_release release;
    s = tensor_statistics_cpu(in, tolerance);
  }
  store(s, o, offset);
}

// Every entry (address, dtype, shape, strides, unit_dim, tolerance, offset) in one call: the
// arguments are checked before any is read, and the GIL is released once.
void tensor_statistics_batch(const std::vector<Entry> &entries, py::array out) {
  auto o = writeable(out);
  std::vector<StatisticsInput> inputs;
  inputs.reserve(entries.size());
  for (const Entry &e : entries)
    inputs.push_back(checked_input(std::get<0>(e), std::get<1>(e), std::get<2>(e), std::get<3>(e),
                                   std::get<4>(e), std::get<5>(e), o.size, std::get<6>(e)));
  std::vector<TensorStatistics> results(entries.size());
  {
    py::gil_scoped_release release;
    for (size_t i = 0; i < inputs.size(); ++i)
      results[i] = tensor_statistics_cpu(inputs[i], std::get<5>(entries[i]));
  }
  for (size_t i = 0; i < inputs.size(); ++i) store(results[i], o, std::get<6>(entries[i]));
}

}  // namespace

void bind_statistics(py::module_ &m) {
  m.def("tensor_statistics", &tensor_statistics);
  m.def("tensor_statistics_batch", &tensor_statistics_batch);
}

}  // namespace nearzero
