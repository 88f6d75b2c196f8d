// Shared helpers of the CUDA binding files (cuda_*.cpp): device pointers arrive from Python as
// integers, results are described by an output tuple. Each op family adds a `bind_cuda_<family>`
// here and defines it in its own cuda_<family>.cpp. Links no libtorch: Python passes raw pointers.
#pragma once
#include "cuda/classify_output_cuda.h"

#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <tuple>

namespace nearzero {

// (mode, pairs, counts, sums, counts_int64, cell_stride, pair_stride, mask, channels, channel_inner)
using OutputSpec = std::tuple<int, int, std::uintptr_t, std::uintptr_t, bool, int64_t, int64_t,
                              std::uintptr_t, int64_t, int64_t>;

inline DeviceOutput device_output_from(const OutputSpec &spec) {
  DeviceOutput out;
  const int mode = std::get<0>(spec);
  if (mode < 0 || mode > 2) throw std::invalid_argument("nearzero: unknown reduce mode");
  out.mode = static_cast<ReduceMode>(mode);
  out.pairs = std::get<1>(spec);
  out.counts = reinterpret_cast<void *>(std::get<2>(spec));
  out.sums = reinterpret_cast<void *>(std::get<3>(spec));
  out.counts_int64 = std::get<4>(spec);
  out.cell_stride = std::get<5>(spec);
  out.pair_stride = std::get<6>(spec);
  out.mask = reinterpret_cast<const uint8_t *>(std::get<7>(spec));
  out.channels = std::get<8>(spec);
  out.channel_inner = std::get<9>(spec);
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
