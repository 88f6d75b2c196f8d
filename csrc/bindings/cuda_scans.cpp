// Bindings of the flat scans: NaN/inf counts and the exact threshold selection.
#include "bindings/cuda_bindings.h"
#include "cuda/device_info_cuda.h"
#include "cuda/nonfinite_cuda.h"
#include "cuda/threshold_cuda.h"

#include <pybind11/pybind11.h>

#include <string>

namespace py = pybind11;

namespace nearzero {
namespace {

template <typename T>
py::tuple count_nonfinite(int device, std::uintptr_t x, int64_t n, std::uintptr_t workspace,
                          std::uintptr_t stream) {
  NonfiniteCounts r{};
  {
    py::gil_scoped_release release;
    CudaDeviceGuard guard(device);
    r = count_nonfinite_cuda<T>(device_pointer<const T>(x), n, device_pointer<int64_t>(workspace),
                                reinterpret_cast<void *>(stream));
  }
  return py::make_tuple(r.nans, r.infinities);
}

template <typename T>
py::tuple order_statistics(int device, std::uintptr_t x, int64_t n, double fraction,
                           std::uintptr_t scratch, int64_t scratch_capacity,
                           std::uintptr_t workspace, std::uintptr_t stream) {
  AbsOrderStatistics<T> r{};
  {
    py::gil_scoped_release release;
    CudaDeviceGuard guard(device);
    r = select_abs_order_statistics_cuda<T>(device_pointer<const T>(x), n, fraction,
                                            device_pointer<T>(scratch), scratch_capacity,
                                            device_pointer<int64_t>(workspace),
                                            reinterpret_cast<void *>(stream));
  }
  return py::make_tuple(double(r.low), double(r.high), r.count, r.nan_count);
}

template <typename T> void bind_typed(py::module_ &m, const std::string &suffix) {
  m.def(("count_nonfinite_" + suffix).c_str(), &count_nonfinite<T>, py::arg("device"),
        py::arg("x"), py::arg("n"), py::arg("workspace"), py::arg("stream"),
        "(NaN count, inf count) of n contiguous values; waits on the stream.");
  m.def(("abs_order_statistics_" + suffix).c_str(), &order_statistics<T>, py::arg("device"),
        py::arg("x"), py::arg("n"), py::arg("fraction"), py::arg("scratch"),
        py::arg("scratch_capacity"), py::arg("workspace"), py::arg("stream"),
        "(low, high, count, nan_count) order statistics of |x| for the midpoint percentile.");
}

}  // namespace

void bind_cuda_scans(py::module_ &m) {
  bind_typed<float>(m, "f32");
  bind_typed<double>(m, "f64");
  m.attr("threshold_workspace_size") = kThresholdWorkspaceSize;
}

}  // namespace nearzero
