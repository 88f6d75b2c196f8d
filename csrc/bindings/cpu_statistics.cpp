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

// What the core needs to read a torch tensor through its Python attributes (the core has no
// torch headers): the dtype objects in code order and the strided layout, given once by Python,
// and the attribute names, interned. Kept for the life of the process.
struct TorchTypes {
  PyObject *dtypes[4] = {};
  PyObject *strided = nullptr;
  PyObject *dtype = nullptr, *is_cpu, *layout, *is_neg, *data_ptr, *shape, *stride;
};

TorchTypes &torch_types() {
  static TorchTypes types;
  return types;
}

void tensor_statistics_types(py::sequence dtypes, py::object strided) {
  if (dtypes.size() != 4)
    throw std::invalid_argument("nearzero: tensor statistics take the four dtypes in code order");
  TorchTypes &t = torch_types();
  for (int i = 0; i < 4; ++i) t.dtypes[i] = py::object(dtypes[i]).inc_ref().ptr();
  t.strided = strided.inc_ref().ptr();
  if (t.dtype == nullptr) {
    t.dtype = PyUnicode_InternFromString("dtype");
    t.is_cpu = PyUnicode_InternFromString("is_cpu");
    t.layout = PyUnicode_InternFromString("layout");
    t.is_neg = PyUnicode_InternFromString("is_neg");
    t.data_ptr = PyUnicode_InternFromString("data_ptr");
    t.shape = PyUnicode_InternFromString("shape");
    t.stride = PyUnicode_InternFromString("stride");
  }
}

py::object attribute(PyObject *object, PyObject *name) {
  PyObject *value = PyObject_GetAttr(object, name);
  if (value == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(value);
}

py::object method(PyObject *object, PyObject *name) {
  PyObject *value = PyObject_CallMethodNoArgs(object, name);
  if (value == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(value);
}

std::vector<int64_t> int_tuple(const py::object &tuple) {
  if (!PyTuple_Check(tuple.ptr()))
    throw std::invalid_argument("nearzero: a tensor's shape and strides must be tuples");
  const Py_ssize_t n = PyTuple_GET_SIZE(tuple.ptr());
  std::vector<int64_t> values(static_cast<size_t>(n));
  for (Py_ssize_t i = 0; i < n; ++i) {
    const int64_t value = PyLong_AsLongLong(PyTuple_GET_ITEM(tuple.ptr(), i));
    if (value == -1 && PyErr_Occurred()) throw py::error_already_set();
    values[static_cast<size_t>(i)] = value;
  }
  return values;
}

// The arguments of a torch tensor that the core reads as it is: a strided CPU tensor of one of
// the four dtypes, not a negative view, of at least one dimension; false for any other.
bool tensor_entry(PyObject *tensor, int unit_dim, double tolerance, int64_t offset,
                  Entry &entry) {
  const TorchTypes &t = torch_types();
  if (t.dtype == nullptr) return false;
  const py::object dtype = attribute(tensor, t.dtype);
  int code = 0;
  while (code < 4 && t.dtypes[code] != dtype.ptr()) ++code;
  if (code == 4 || attribute(tensor, t.is_cpu).ptr() != Py_True ||
      attribute(tensor, t.layout).ptr() != t.strided || method(tensor, t.is_neg).ptr() != Py_False)
    return false;
  std::vector<int64_t> shape = int_tuple(attribute(tensor, t.shape));
  if (shape.empty()) return false;
  const uintptr_t address = PyLong_AsUnsignedLongLong(method(tensor, t.data_ptr).ptr());
  if (PyErr_Occurred()) throw py::error_already_set();
  entry = Entry{address, code, std::move(shape), int_tuple(method(tensor, t.stride)), unit_dim,
                tolerance, offset};
  return true;
}

// tensor_statistics_batch for entries (tensor, unit_dim, offset, tolerance) of torch tensors,
// their address, dtype, shape and strides read here; false, with nothing written, where some
// tensor is not one the core reads as it is (the caller then passes a copy).
bool tensor_statistics_tensors(const py::list &entries, py::array out) {
  std::vector<Entry> arguments(entries.size());
  for (size_t i = 0; i < arguments.size(); ++i) {
    const py::tuple entry = py::reinterpret_borrow<py::object>(entries[i]);
    if (entry.size() != 4)
      throw std::invalid_argument("nearzero: tensor statistics take (tensor, unit_dim, offset, "
                                  "tolerance) entries");
    if (!tensor_entry(entry[0].ptr(), entry[1].cast<int>(), entry[3].cast<double>(),
                      entry[2].cast<int64_t>(), arguments[i]))
      return false;
  }
  tensor_statistics_batch(arguments, std::move(out));
  return true;
}

}  // namespace

void bind_statistics(py::module_ &m) {
  m.def("tensor_statistics", &tensor_statistics);
  m.def("tensor_statistics_batch", &tensor_statistics_batch);
  m.def("tensor_statistics_types", &tensor_statistics_types);
  m.def("tensor_statistics_tensors", &tensor_statistics_tensors);
}

}  // namespace nearzero
