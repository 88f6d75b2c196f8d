// Tap counts and index unflattening of the convolution geometry, and the per-element class codes
// every convolution kernel reads instead of re-classifying gathered values (the operands'
// element strides are in common/conv_strides.h).
// Included by the conv_*_cpu.cpp kernels only.
#pragma once
#include "common/classify_rule.h"
#include "common/conv_strides.h"
#include "cpu/parallel.h"
#include "cpu/conv_cpu.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <cstdint>
#include <memory>

namespace nearzero {
namespace conv_detail {

inline int64_t tap_count(const ConvGeometry &g) {
  return g.kernel_size[0] * g.kernel_size[1] * g.kernel_size[2];
}

// Spatial coordinates of a flattened tap or position index over `size`.
inline void unflatten3(int64_t index, const int64_t size[3], int64_t coord[3]) {
  coord[2] = index % size[2];
  index /= size[2];
  coord[1] = index % size[1];
  coord[0] = index / size[1];
}

// Class code of one element: the class (classify_value) in bits 0-1 and, in bit 2, whether
// the value is infinite (those rows take the exact scalar path, see conv_tile.h).
constexpr uint8_t kInfiniteBit = 4;
// Zero bytes after the last code: the AVX-512 gathers read a code as the low byte of 4.
constexpr int64_t kCodePadding = 3;

template <typename T>
std::unique_ptr<uint8_t[]> class_codes(const T *values, int64_t count, T threshold) {
  std::unique_ptr<uint8_t[]> codes;
  try {
    codes.reset(new uint8_t[size_t((count > 0 ? count : 0) + kCodePadding)]);
  } catch (const std::bad_alloc &) {
    throw OutOfMemory("nearzero: could not allocate " + std::to_string(count) +
                      " bytes for the class codes of a convolution operand");
  }
  uint8_t *out = codes.get();
  for (int64_t i = 0; i < kCodePadding; ++i) out[(count > 0 ? count : 0) + i] = 0;
  constexpr int64_t kPart = 1 << 18;
  ParallelRun run;
  run.for_each((count + kPart - 1) / kPart, [&](int64_t part) {
    run.checkpoint();
    const int64_t begin = part * kPart, end = std::min(count, begin + kPart);
    const T *in = values + begin, t = threshold;  // locals: the loop vectorises
    uint8_t *codes_out = out + begin;
    for (int64_t i = 0; i < end - begin; ++i) {
      const T v = in[i];
      codes_out[i] = uint8_t(classify_value(v, t) | (std::isinf(v) ? kInfiniteBit : 0));
    }
  });
  run.finish();
  return codes;
}

}  // namespace conv_detail
}  // namespace nearzero
