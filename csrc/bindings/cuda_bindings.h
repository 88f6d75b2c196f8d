// Shared helpers of the CUDA binding files (cuda_*.cpp): device pointers arrive from Python as
// integers, results are described by a ResultSpec (bindings/result_spec.h). Each op family
// adds a `bind_cuda_<family>` here and defines it in its own cuda_<family>.cpp. Links no
// libtorch: Python passes raw pointers.
#pragma once
#include "bindings/result_spec.h"
#include "common/result_descriptor.h"

#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>

namespace nearzero {

// The CUDA module's result spec: device addresses of the buffers and of the mask (0: none).
using CudaResultSpec = ResultSpec<std::uintptr_t, std::uintptr_t>;

// The result descriptor of one call of an op with `pairs` pairs.
inline ClassifyOutput cuda_output(const CudaResultSpec &spec, int pairs) {
  ClassifyOutput out = spec.layout(pairs);
  out.counts = reinterpret_cast<void *>(spec.counts);
  out.sums = reinterpret_cast<void *>(spec.sums);
  out.mask = reinterpret_cast<const uint8_t *>(spec.mask);
  if (out.counts == nullptr || out.sums == nullptr)
    throw std::invalid_argument("nearzero: CUDA result buffers are missing");
  if (out.mode == ReduceMode::kChannel && (out.channels <= 0 || out.channel_inner <= 0))
    throw std::invalid_argument("nearzero: reduce='channel' needs a positive channel count");
  return out;
}

template <typename T> inline T *device_pointer(std::uintptr_t address) {
  return reinterpret_cast<T *>(address);
}

void bind_cuda_scans(pybind11::module_ &m);
void bind_cuda_elementwise(pybind11::module_ &m);
void bind_cuda_matmul(pybind11::module_ &m);
void bind_cuda_conv(pybind11::module_ &m);

}  // namespace nearzero
