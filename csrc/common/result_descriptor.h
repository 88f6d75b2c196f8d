// The result descriptor: where a classify kernel puts its per-cell counts and sums (the full
// result, or a reduction over all cells or over everything but the channel, with an optional
// mask). One struct for both backends: the CPU kernels get host pointers, the CUDA kernels the
// struct by value with device pointers. The bindings build it from a ResultSpec
// (bindings/result_spec.h); kernels store cells through common/cell_store.h.
#pragma once
#include <cstdint>

namespace nearzero {

enum class ReduceMode : int { kNone = 0, kAll = 1, kChannel = 2 };

struct ClassifyOutput {
  ReduceMode mode = ReduceMode::kNone;
  int pairs = 9;               // 9 for two-input ops, 3 for tensor_classify
  void *counts = nullptr;      // kNone: int32/int64 per `counts_int64`; reductions: int64
  void *sums = nullptr;        // kNone: S (the kernel's sum type); reductions: double
  bool counts_int64 = false;
  int64_t cell_stride = 0;     // kNone: element strides of the full result
  int64_t pair_stride = 1;
  const uint8_t *mask = nullptr;  // one byte per cell (row-major value shape), or null
  int64_t channels = 1;           // kChannel: channel of a cell = (cell / channel_inner) % channels
  int64_t channel_inner = 1;
};

}  // namespace nearzero
