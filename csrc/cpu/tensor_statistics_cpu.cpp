// Per-step tensor statistics of the history (tensor_statistics_cpu.h). The tensor is walked as
// runs along its innermost dimension (after size-1 dimensions are dropped and adjacent ones
// merged); a run lies in one unit, or runs along the units. Sums of squares are float lanes over
// at most kChunk values, then float64, as the history needs about six digits; values of 16-bit
// types are widened to float32 as they are read. The pass itself (tensor_statistics_kernel.h) is
// compiled once per vector width; the CPU level chosen at import (cpu_kernels.h) picks one.
#include "cpu/tensor_statistics_cpu.h"
#include "cpu/cpu_kernels.h"
#include "cpu/parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace nearzero {
namespace {

constexpr int64_t kChunk = 1024;
// Tensors below this size take one thread: starting threads costs more than the pass.
constexpr int64_t kParallelSize = int64_t(1) << 20;

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff, bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal half: normal as float
    int shift = 0;
    while (!(mantissa & 0x400)) {
      mantissa <<= 1;
      ++shift;
    }
    bits = sign | (uint32_t(113 - shift) << 23) | ((mantissa & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// What a value is read as, and the integer of the same width holding its bits.
template <typename T> struct Reader {
  using Value = float;
  using Bits = uint32_t;
  static Value load(const T *p) { return *p; }
};
template <> struct Reader<double> {
  using Value = double;
  using Bits = uint64_t;
  static Value load(const double *p) { return *p; }
};
struct Half {
  uint16_t bits;
};
struct BFloat16 {
  uint16_t bits;
};
template <> struct Reader<Half> : Reader<float> {
  static float load(const Half *p) { return half_to_float(p->bits); }
};
template <> struct Reader<BFloat16> : Reader<float> {
  static float load(const BFloat16 *p) {
    const uint32_t bits = uint32_t(p->bits) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
};

template <typename V, typename B> B magnitude_bits(V v) {
  B b;
  std::memcpy(&b, &v, sizeof(V));
  return b & (~B(0) >> 1);
}
template <typename B> constexpr B exponent_mask() {
  return sizeof(B) == 4 ? B(0x7f800000u) : B(0x7ff0000000000000ull);
}

// The tensor as runs: `outer` dimensions (sizes, strides) around one innermost run.
struct Runs {
  std::vector<int64_t> sizes, strides;  // outer dimensions, outermost first
  int unit_outer = -1;                  // the unit dimension among them (-1: none or the run)
  int64_t run = 1, run_stride = 1;
  bool run_is_unit = false;
  int64_t count = 1;  // number of runs
};

Runs make_runs(const StatisticsInput &in, int64_t &units) {
  struct Dim {
    int64_t size, stride;
    bool unit;
  };
  std::vector<Dim> dims;
  units = 0;
  for (size_t d = 0; d < in.shape.size(); ++d) {
    const bool unit = int(d) == in.unit_dim;
    if (unit) units = in.shape[d];
    if (in.shape[d] != 1 || unit) dims.push_back({in.shape[d], in.strides[d], unit});
  }
  // Outermost first by stride (the unit dimension's place does not matter: it is never merged).
  std::stable_sort(dims.begin(), dims.end(),
                   [](const Dim &a, const Dim &b) { return a.stride > b.stride; });
  std::vector<Dim> merged;
  for (const Dim &d : dims) {
    if (!merged.empty() && !merged.back().unit && !d.unit &&
        merged.back().stride == d.stride * d.size) {
      merged.back() = {merged.back().size * d.size, d.stride, false};
    } else {
      merged.push_back(d);
    }
  }
  Runs r;
  if (merged.empty()) return r;  // one value
  r.run = merged.back().size;
  r.run_stride = merged.back().stride;
  r.run_is_unit = merged.back().unit;
  for (size_t i = 0; i + 1 < merged.size(); ++i) {
    if (merged[i].unit) r.unit_outer = int(r.sizes.size());
    r.sizes.push_back(merged[i].size);
    r.strides.push_back(merged[i].stride);
    r.count *= merged[i].size;
  }
  return r;
}

// Partial results of one thread.
template <typename B> struct Partial {
  double squares = 0;
  std::vector<B> unit_bits;     // OR of magnitude bits per unit: non-zero means alive
  std::vector<double> unit_abs;  // sum of |x| per unit (gradient mode)
  std::vector<int64_t> unit_non_finite;
};

// The baseline copy: 16-byte vectors (SSE2 on x86-64, NEON on aarch64), which every CPU runs.
namespace width16 {
constexpr int kVectorBytes = 16;
#include "cpu/tensor_statistics_kernel.h"
}  // namespace width16

// GCC on x86-64 also compiles AVX2 and AVX-512 copies; they run only where the CPU level chosen
// at import (v3, v4) guarantees those instructions.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NEARZERO_WIDE_STATISTICS 1
#pragma GCC push_options
#pragma GCC target("avx2")
namespace width32 {
constexpr int kVectorBytes = 32;
#include "cpu/tensor_statistics_kernel.h"
}  // namespace width32
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,avx512f,avx512bw,avx512dq,avx512vl")
namespace width64 {
constexpr int kVectorBytes = 64;
#include "cpu/tensor_statistics_kernel.h"
}  // namespace width64
#pragma GCC pop_options
#endif

// The widest vectors of the CPU level chosen at import (read once: the level does not change).
int vector_bytes() {
  static const int bytes = [] {
    const std::string level = cpu_levels().selected;
    return level == "v4" ? 64 : level == "v3" ? 32 : 16;
  }();
  return bytes;
}

}  // namespace

TensorStatistics tensor_statistics_cpu(const StatisticsInput &in, double tolerance) {
#if defined(NEARZERO_WIDE_STATISTICS)
  switch (vector_bytes()) {
    case 64: return width64::statistics(in, tolerance);
    case 32: return width32::statistics(in, tolerance);
  }
#endif
  return width16::statistics(in, tolerance);
}

}  // namespace nearzero
