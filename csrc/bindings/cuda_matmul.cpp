// Bindings of the CUDA matmul classify kernel (matmul_classify, tensordot_classify).
#include "bindings/cuda_bindings.h"
#include "cuda/device_info_cuda.h"
#include "cuda/matmul_cuda.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

namespace py = pybind11;

namespace nearzero {
namespace {

template <typename T> int64_t scratch_doubles(int device, int64_t k, bool has_infinity) {
  py::gil_scoped_release release;
  CudaDeviceGuard guard(device);
  return matmul_scratch_doubles<T>(k, has_infinity);
}

// dims: (batches, n, k, m); strides: (x row, x col, y row, y col) in elements; the offsets are
// device int64 arrays of one element offset per batch entry; scratch: scratch_doubles doubles.
template <typename T>
void matmul_classify(int device, std::uintptr_t x, std::uintptr_t y, std::uintptr_t x_offsets,
                     std::uintptr_t y_offsets, std::vector<int64_t> dims,
                     std::vector<int64_t> strides, double tx, double ty, bool has_infinity,
                     std::uintptr_t scratch, int64_t scratch_doubles, const CudaResultSpec &result,
                     std::uintptr_t stream) {
  if (dims.size() != 4 || strides.size() != 4)
    throw std::invalid_argument("nearzero: matmul needs 4 dims and 4 strides");
  const ClassifyOutput out = cuda_output(result, 9);
  const MatmulProblem<T> p{device_pointer<const T>(x), device_pointer<const T>(y),
                           device_pointer<const int64_t>(x_offsets),
                           device_pointer<const int64_t>(y_offsets), dims[0], dims[1], dims[2],
                           dims[3], strides[0], strides[1], strides[2], strides[3], T(tx), T(ty)};
  py::gil_scoped_release release;
  CudaDeviceGuard guard(device);
  matmul_classify_cuda<T>(p, out, has_infinity, device_pointer<double>(scratch), scratch_doubles,
                          reinterpret_cast<void *>(stream));
}

template <typename T> void bind_typed(py::module_ &m, const std::string &suffix) {
  m.def(("matmul_classify_" + suffix).c_str(), &matmul_classify<T>, py::arg("device"),
        py::arg("x"), py::arg("y"), py::arg("x_offsets"), py::arg("y_offsets"), py::arg("dims"),
        py::arg("strides"), py::arg("x_threshold"), py::arg("y_threshold"),
        py::arg("has_infinity"), py::arg("scratch"), py::arg("scratch_doubles"),
        py::arg("result"), py::arg("stream"));
  m.def(("matmul_scratch_doubles_" + suffix).c_str(), &scratch_doubles<T>, py::arg("device"),
        py::arg("k"), py::arg("has_infinity"),
        "Doubles of device scratch matmul_classify needs for this k (0: pass scratch=0).");
}

}  // namespace

void bind_cuda_matmul(py::module_ &m) {
  bind_typed<float>(m, "f32");
  bind_typed<double>(m, "f64");
}

}  // namespace nearzero
