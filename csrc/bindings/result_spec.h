// The result spec: the one argument through which every classify binding of both modules says
// where its counts and sums go (the fields of common/result_descriptor.h's ClassifyOutput).
// One struct and one binding, `ResultSpec`, in `nearzero._core` with NumPy buffers and in
// `nearzero._cuda` with device addresses; built in Python by backends/cpu_results.py and
// backends/cuda_results.py. Each module checks its buffers when it turns a spec into a
// ClassifyOutput (cpu_output in cpu_bindings.h, cuda_output in cuda_bindings.h).
#pragma once
#include "common/result_descriptor.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>

namespace nearzero {

// Buffer: how the module receives counts and sums; Mask: the optional bool mask (one byte per
// cell).
template <typename Buffer, typename Mask> struct ResultSpec {
  int mode;           // 0 full result, 1 reduce="all", 2 reduce="channel"
  int pairs;          // 9, or 3 for tensor_classify
  Buffer counts;      // full result: int32 or int64 (counts_int64); reductions: int64
  Buffer sums;        // full result: the compute dtype; reductions: float64
  bool counts_int64;
  int64_t cell_stride;  // full result: element strides of a cell and of a pair in the buffers
  int64_t pair_stride;
  Mask mask;
  int64_t channels;       // reduce="channel": channel of a cell = (cell / channel_inner) % channels
  int64_t channel_inner;

  // The descriptor's layout fields for an op of `op_pairs` pairs, checked; the caller sets
  // the buffers and the mask.
  ClassifyOutput layout(int op_pairs) const {
    if (mode < 0 || mode > 2) throw std::invalid_argument("nearzero: unknown reduce mode");
    if (pairs != op_pairs)
      throw std::invalid_argument("nearzero: the result spec has the wrong number of pairs");
    if (cell_stride < 0 || pair_stride < 0 || channels < 0 || channel_inner < 0)
      throw std::invalid_argument("nearzero: invalid result layout");
    ClassifyOutput out;
    out.mode = static_cast<ReduceMode>(mode);
    out.pairs = pairs;
    out.counts_int64 = counts_int64;
    out.cell_stride = cell_stride;
    out.pair_stride = pair_stride;
    out.channels = channels;
    out.channel_inner = channel_inner;
    return out;
  }
};

template <typename Buffer, typename Mask> void bind_result_spec(pybind11::module_ &m) {
  namespace py = pybind11;
  using Spec = ResultSpec<Buffer, Mask>;
  // module_local: `_core` and `_cuda` each hold their own class of this name.
  py::class_<Spec>(m, "ResultSpec", py::module_local())
      .def(py::init([](int mode, int pairs, Buffer counts, Buffer sums, bool counts_int64,
                       int64_t cell_stride, int64_t pair_stride, Mask mask, int64_t channels,
                       int64_t channel_inner) {
             return Spec{mode, pairs, counts, sums, counts_int64, cell_stride, pair_stride,
                         mask, channels, channel_inner};
           }),
           py::arg("mode"), py::arg("pairs"), py::arg("counts"), py::arg("sums"),
           py::arg("counts_int64"), py::arg("cell_stride"), py::arg("pair_stride"),
           py::arg("mask"), py::arg("channels"), py::arg("channel_inner"));
}

}  // namespace nearzero
