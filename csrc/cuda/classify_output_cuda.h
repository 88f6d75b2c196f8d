// Where a CUDA classify kernel puts its counts and sums: the GPU form of cpu/classify_output.h
// (full result, reduce="all", reduce="channel", mask=). A plain struct shared by the bindings
// (g++) and the kernels (nvcc); the device-side helpers are in cuda/classify_output_cuda.cuh.
#pragma once
#include "cpu/classify_output.h"

#include <cstdint>

namespace nearzero {

struct DeviceOutput {
  ReduceMode mode = ReduceMode::kNone;
  int pairs = 9;               // 9 for two-input ops, 3 for tensor_classify
  void *counts = nullptr;      // kNone: int32 or int64 (counts_int64); reductions: int64 [slot][pair]
  void *sums = nullptr;        // kNone: the kernel's value type; reductions: double [slot][pair]
  bool counts_int64 = false;
  int64_t cell_stride = 1;     // kNone: element strides of the full result
  int64_t pair_stride = 0;
  const uint8_t *mask = nullptr;  // one byte per cell (row-major value shape), or null
  int64_t channels = 1;           // kChannel: channel of a cell = (cell / channel_inner) % channels
  int64_t channel_inner = 1;
};

// Number of reduction slots (rows of the reduced result).
inline int64_t reduction_slots(const DeviceOutput &out) {
  return out.mode == ReduceMode::kChannel ? out.channels : 1;
}

}  // namespace nearzero
