// Binding of the per-step tensor statistics (cpu/tensor_statistics_cpu.h). The tensor comes as
// its address, dtype code, shape and element strides, read in place: Python
// (nearzero/report/tensor_statistics.py) passes them from a live CPU torch tensor that it holds
// for the call. Five float64 values go to out[offset:offset + 5].
#include "bindings/cpu_bindings.h"
#include "cpu/tensor_statistics_cpu.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cmath>
#include <stdexcept>
#include <vector>

namespace py = pybind11;

namespace nearzero {
namespace {

void tensor_statistics(uintptr_t address, int dtype, std::vector<int64_t> shape,
                       std::vector<int64_t> strides, int unit_dim, double tolerance,
                       py::array_t<double> out, int64_t offset) {
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
  if (out.ndim() != 1 || !out.writeable() || offset < 0 || offset + 5 > out.shape(0))
    throw std::invalid_argument("nearzero: tensor statistics need 5 writeable float64 slots");
  StatisticsInput in{reinterpret_cast<const void *>(address), StatisticsDtype(dtype),
                     std::move(shape), std::move(strides), unit_dim};
  TensorStatistics s;
  {
    py::gil_scoped_release release;
    s = tensor_statistics_cpu(in, tolerance);
  }
  auto o = out.mutable_unchecked<1>();
  o(offset) = s.squared_norm;
  o(offset + 1) = double(s.units_alive);
  o(offset + 2) = double(s.units);
  o(offset + 3) = s.finite < 0 ? NAN : double(s.finite);
  o(offset + 4) = s.near_zero < 0 ? NAN : double(s.near_zero);
}

}  // namespace

void bind_statistics(py::module_ &m) { m.def("tensor_statistics", &tensor_statistics); }

}  // namespace nearzero
