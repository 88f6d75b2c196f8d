// Shared helpers of the CPU binding files (cpu_*.cpp): result-buffer checks and strided views.
// Each op family adds a `bind_<family>(module)` here and defines it in its own cpu_<family>.cpp.
#pragma once
#include "cpu/classify_output.h"
#include "cpu/elementwise_cpu.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>

namespace nearzero {

ClassifyOutput make_output(int mode, int pairs, pybind11::array &counts, pybind11::array &sums,
                           int64_t cell_stride, int64_t pair_stride, pybind11::object mask,
                           int64_t channels, int64_t channel_inner, bool double_sums);

template <typename T> inline StridedInput<T> strided_input(const pybind11::array &a) {
  StridedInput<T> in{static_cast<const T *>(a.data()), {}};
  for (pybind11::ssize_t d = 0; d < a.ndim(); ++d) {
    if (a.strides(d) % pybind11::ssize_t(sizeof(T)) != 0)
      throw std::invalid_argument("nearzero: input strides must be multiples of the item size");
    in.strides.push_back(a.strides(d) / pybind11::ssize_t(sizeof(T)));
  }
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
