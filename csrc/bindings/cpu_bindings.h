// Shared helpers of the CPU binding files (cpu_*.cpp): result-buffer checks and strided views.
// Each op family adds a `bind_<family>(module)` here and defines it in its own cpu_<family>.cpp.
#pragma once
#include "bindings/result_spec.h"
#include "cpu/parallel.h"
#include "common/result_descriptor.h"
#include "cpu/elementwise_cpu.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <vector>

namespace nearzero {

// The CPU module's result spec: NumPy buffers and an optional NumPy mask.
using CpuResultSpec = ResultSpec<pybind11::array, std::optional<pybind11::array>>;

// The result descriptor of one call of an op with `pairs` pairs, checked against the `cells`
// cells the kernel emits; `double_sums`: the compute dtype is float64.
ClassifyOutput cpu_output(const CpuResultSpec &spec, int pairs, bool double_sums, int64_t cells);

// The product of `shape`, refused when negative or beyond int64.
int64_t cell_count(const std::vector<int64_t> &shape);

// Runs a kernel with the GIL released. A kernel stopped by an interrupt raises the pending
// Python exception (KeyboardInterrupt); other exceptions pass through (pybind11 translates
// them: invalid_argument -> ValueError, bad_alloc -> MemoryError).
template <typename Kernel> void run_released(Kernel kernel) {
  bool interrupted = false;
  {
    pybind11::gil_scoped_release release;
    try {
      kernel();
    } catch (const Interrupted &) {
      interrupted = true;
    }
  }
  if (interrupted) {
    if (!PyErr_Occurred()) PyErr_SetNone(PyExc_KeyboardInterrupt);
    throw pybind11::error_already_set();
  }
}

// Whether `a` holds T in native byte order (any equivalent dtype object: '<f4', 'float32').
template <typename T> bool has_dtype(const pybind11::array &a) {
  return pybind11::isinstance<pybind11::array_t<T>>(a);
}

// Stride of axis d in elements of T (0 for an axis of length 1, which is never stepped along);
// a byte stride that is not whole elements is refused.
template <typename T> int64_t element_stride(const pybind11::array &a, pybind11::ssize_t d) {
  if (a.shape(d) <= 1) return 0;
  if (a.strides(d) % pybind11::ssize_t(sizeof(T)) != 0)
    throw std::invalid_argument("nearzero: input strides must be multiples of the item size");
  return int64_t(a.strides(d) / pybind11::ssize_t(sizeof(T)));
}

// Element offsets [lowest, highest] that `a` spans with its own shape and strides (an empty
// array spans nothing: returns false). Strides must be whole elements of T.
template <typename T> bool element_span(const pybind11::array &a, int64_t &lowest, int64_t &highest) {
  if (reinterpret_cast<std::uintptr_t>(a.data()) % alignof(T) != 0)
    throw std::invalid_argument("nearzero: input data must be aligned to its item size");
  lowest = highest = 0;
  for (pybind11::ssize_t d = 0; d < a.ndim(); ++d) {
    if (a.shape(d) == 0) return false;
    const int64_t stride = element_stride<T>(a, d);
    const int64_t reach = int64_t(a.shape(d) - 1) * stride;
    (reach < 0 ? lowest : highest) += reach;
  }
  return true;
}

// A strided view of `a` read over `shape` (which must be `a`'s shape: the kernel reads exactly
// the elements `a` holds).
template <typename T>
inline StridedInput<T> strided_input(const pybind11::array &a, const std::vector<int64_t> &shape) {
  if (!has_dtype<T>(a)) throw std::invalid_argument("nearzero: input has the wrong dtype");
  if (size_t(a.ndim()) != shape.size())
    throw std::invalid_argument("nearzero: input rank does not match the shape");
  for (pybind11::ssize_t d = 0; d < a.ndim(); ++d)
    if (int64_t(a.shape(d)) != shape[size_t(d)])
      throw std::invalid_argument("nearzero: input shape does not match the shape");
  int64_t lowest, highest;
  element_span<T>(a, lowest, highest);  // checks the strides
  StridedInput<T> in{static_cast<const T *>(a.data()), {}};
  for (pybind11::ssize_t d = 0; d < a.ndim(); ++d) in.strides.push_back(element_stride<T>(a, d));
  return in;
}

int max_threads_for_python();

// Convolution kernels (cpu_conv.cpp).
void bind_conv(pybind11::module_ &m);

// Filtering and grouping of classify results (cpu_analysis.cpp).
void bind_analysis(pybind11::module_ &m);

// Per-step tensor statistics of the history (cpu_statistics.cpp).
void bind_statistics(pybind11::module_ &m);

}  // namespace nearzero
