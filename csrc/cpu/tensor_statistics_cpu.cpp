// Per-step tensor statistics of the history (tensor_statistics_cpu.h). The tensor is walked as
// runs along its innermost dimension (after size-1 dimensions are dropped and adjacent ones
// merged); a run lies in one unit, or runs along the units. Sums of squares are float lanes over
// at most kChunk values, then float64, as the history needs about six digits; values of 16-bit
// types are widened to float32 as they are read.
#include "cpu/tensor_statistics_cpu.h"
#include "cpu/parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>

namespace nearzero {
namespace {

constexpr int kLanes = 16;
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

// Calls fn(offset, unit) for runs [begin, end): the element offset of each run's first value and
// its unit (0 when the run is along the units or there are none).
template <typename Fn> void for_runs(const Runs &r, int64_t begin, int64_t end, Fn &&fn) {
  const size_t n = r.sizes.size();
  std::vector<int64_t> index(n, 0);
  int64_t rest = begin, offset = 0;
  for (size_t i = n; i-- > 0;) {
    index[i] = rest % r.sizes[i];
    rest /= r.sizes[i];
    offset += index[i] * r.strides[i];
  }
  for (int64_t k = begin; k < end; ++k) {
    fn(offset, r.unit_outer >= 0 ? index[r.unit_outer] : 0);
    for (size_t i = n; i-- > 0;) {  // next index, innermost outer dimension first
      offset += r.strides[i];
      if (++index[i] < r.sizes[i]) break;
      offset -= r.strides[i] * r.sizes[i];
      index[i] = 0;
    }
  }
}

// Partial results of one thread.
template <typename B> struct Partial {
  double squares = 0;
  std::vector<B> unit_bits;     // OR of magnitude bits per unit: non-zero means alive
  std::vector<double> unit_abs;  // sum of |x| per unit (gradient mode)
  std::vector<int64_t> unit_non_finite;
};

// kBlock values as vectors of 16 bytes (GCC/Clang vector extensions, SSE2 or NEON), else scalars.
#if defined(__GNUC__) || defined(__clang__)
template <typename V> struct Vec {
  static constexpr int kWidth = 16 / sizeof(V);
  using Bits = typename Reader<V>::Bits;
  typedef V Values __attribute__((vector_size(16)));
  typedef Bits Ints __attribute__((vector_size(16)));
};
#endif

// Running sums of one thread over consecutive contiguous values: squares in V lanes, moved to
// float64 every kChunk values; magnitude bits, |x| and non-finite counts of the current run.
template <typename V, bool kGradient> struct Accumulator {
  using B = typename Reader<V>::Bits;
  static constexpr B kExp = exponent_mask<B>();
#if defined(__GNUC__) || defined(__clang__)
  static constexpr int kVectors = 4, kBlock = kVectors * Vec<V>::kWidth;
  typename Vec<V>::Values squares[kVectors] = {}, magnitudes[kVectors] = {};
  typename Vec<V>::Ints bits[kVectors] = {}, bad[kVectors] = {};
#else
  static constexpr int kBlock = 1;
#endif
  V scalar_squares = 0, scalar_magnitude = 0;
  B scalar_bits = 0;
  int64_t scalar_bad = 0;
  int64_t pending = 0;  // values in the V lanes since the last move to float64
  double total_squares = 0;

  // Consecutive values x[0..n) (V after reading); n a multiple of kBlock.
  template <typename T> void blocks(const T *x, int64_t n) {
#if defined(__GNUC__) || defined(__clang__)
    using Values = typename Vec<V>::Values;
    using Ints = typename Vec<V>::Ints;
    constexpr int w = Vec<V>::kWidth;
    for (int64_t i = 0; i < n; i += kBlock) {
      for (int k = 0; k < kVectors; ++k) {
        Values v;
        if constexpr (std::is_same<T, V>::value) {
          std::memcpy(&v, x + i + k * w, sizeof(v));
        } else {
          for (int l = 0; l < w; ++l) v[l] = Reader<T>::load(x + i + k * w + l);
        }
        squares[k] += v * v;
        const Ints m = (Ints)v & (~B(0) >> 1);  // a vector cast keeps the bits
        bits[k] |= m;
        if (kGradient) {
          magnitudes[k] += (Values)m;
          bad[k] -= (m & kExp) == kExp;  // a true comparison is all ones: -1
        }
      }
    }
#else
    for (int64_t i = 0; i < n; ++i) one(Reader<T>::load(x + i));
#endif
    pending += n;
  }
  void one(V v) {
    scalar_squares += v * v;
    const B m = magnitude_bits<V, B>(v);
    scalar_bits |= m;
    if (kGradient) {
      V a;
      std::memcpy(&a, &m, sizeof(V));
      scalar_magnitude += a;
      scalar_bad += (m & kExp) == kExp;
    }
    ++pending;
  }
  // Ends a run: its OR of bits, |x| sum and non-finite count; keeps the squares going.
  void end_run(B &unit_bits, double *unit_abs, int64_t *unit_bad) {
    B run_bits = scalar_bits;
    double run_abs = double(scalar_magnitude);
    int64_t run_bad = scalar_bad;
    scalar_bits = 0, scalar_magnitude = 0, scalar_bad = 0;
#if defined(__GNUC__) || defined(__clang__)
    typename Vec<V>::Ints any = bits[0];
    for (int k = 1; k < kVectors; ++k) any |= bits[k];
    for (int l = 0; l < Vec<V>::kWidth; ++l) run_bits |= any[l];
    for (int k = 0; k < kVectors; ++k) {
      bits[k] = typename Vec<V>::Ints{};
      if (kGradient) {
        for (int l = 0; l < Vec<V>::kWidth; ++l) {
          run_abs += double(magnitudes[k][l]);
          run_bad += int64_t(bad[k][l]);
        }
        magnitudes[k] = typename Vec<V>::Values{}, bad[k] = typename Vec<V>::Ints{};
      }
    }
#endif
    unit_bits |= run_bits;
    if (kGradient) *unit_abs += run_abs, *unit_bad += run_bad;
    if (pending >= kChunk) flush();
  }
  void flush() {
    double sum = double(scalar_squares);
    scalar_squares = 0;
#if defined(__GNUC__) || defined(__clang__)
    for (int k = 0; k < kVectors; ++k) {
      for (int l = 0; l < Vec<V>::kWidth; ++l) sum += double(squares[k][l]);
      squares[k] = typename Vec<V>::Values{};
    }
#endif
    total_squares += sum;
    pending = 0;
  }
};

template <typename T, bool kGradient>
void first_pass(const T *data, const Runs &r, int64_t begin, int64_t end,
                Partial<typename Reader<T>::Bits> &p) {
  using V = typename Reader<T>::Value;
  using B = typename Reader<T>::Bits;
  constexpr B kExp = exponent_mask<B>();
  const int64_t n = r.run, step = r.run_stride;
  Accumulator<V, kGradient> acc;
  double ignored_abs = 0;
  int64_t ignored_bad = 0;
  for_runs(r, begin, end, [&](int64_t offset, int64_t unit) {
    const T *x = data + offset;
    if (r.run_is_unit) {  // one value per unit along the run
      int64_t i = 0;
#if defined(__GNUC__) || defined(__clang__)
      if constexpr (!kGradient && std::is_same<T, V>::value) {
        using Values = typename Vec<V>::Values;
        using Ints = typename Vec<V>::Ints;
        constexpr int w = Vec<V>::kWidth;
        if (step == 1) {
          for (; i + w <= n; i += w) {
            Values v;
            Ints b;
            std::memcpy(&v, x + i, sizeof(v));
            std::memcpy(&b, &p.unit_bits[i], sizeof(b));
            acc.squares[0] += v * v;
            b |= (Ints)v & (~B(0) >> 1);
            std::memcpy(&p.unit_bits[i], &b, sizeof(b));
            acc.pending += w;
            if (acc.pending >= kChunk) acc.flush();
          }
        }
      }
#endif
      for (; i < n; ++i) {
        const V v = Reader<T>::load(x + i * step);
        acc.total_squares += double(v) * double(v);
        const B m = magnitude_bits<V, B>(v);
        p.unit_bits[i] |= m;
        if (kGradient) {
          p.unit_abs[i] += double(std::fabs(v));
          p.unit_non_finite[i] += (m & kExp) == kExp;
        }
      }
      return;
    }
    int64_t i = 0;
    if (step == 1) {
      for (; i < n;) {  // whole blocks, moving the squares to float64 every kChunk values
        const int64_t blocks = std::min(n - i, kChunk) / acc.kBlock * acc.kBlock;
        if (blocks == 0) break;
        acc.blocks(x + i, blocks);
        i += blocks;
        if (acc.pending >= kChunk) acc.flush();
      }
    }
    for (; i < n; ++i) acc.one(Reader<T>::load(x + i * step));
    acc.end_run(p.unit_bits[unit], kGradient ? &p.unit_abs[unit] : &ignored_abs,
                kGradient ? &p.unit_non_finite[unit] : &ignored_bad);
  });
  acc.flush();
  p.squares += acc.total_squares;
}

// Values with |x| <= level (NaN never is).
template <typename T>
int64_t count_at_most(const T *data, const Runs &r, int64_t begin, int64_t end, double level) {
  using V = typename Reader<T>::Value;
  // The largest V not above `level`: comparing in V then agrees with comparing in float64.
  V limit = V(level);
  if (double(limit) > level) limit = std::nextafter(limit, -std::numeric_limits<V>::infinity());
  const int64_t n = r.run, step = r.run_stride;
  int64_t total = 0;
  for_runs(r, begin, end, [&](int64_t offset, int64_t) {
    const T *x = data + offset;
    int64_t lanes[kLanes] = {};
    int64_t i = 0;
    if (step == 1)
      for (; i + kLanes <= n; i += kLanes)
        for (int l = 0; l < kLanes; ++l) lanes[l] += std::fabs(Reader<T>::load(x + i + l)) <= limit;
    for (; i < n; ++i) lanes[0] += std::fabs(Reader<T>::load(x + i * step)) <= limit;
    for (int l = 0; l < kLanes; ++l) total += lanes[l];
  });
  return total;
}

template <typename T>
TensorStatistics statistics_typed(const StatisticsInput &in, double tolerance) {
  using B = typename Reader<T>::Bits;
  const T *data = static_cast<const T *>(in.data);
  TensorStatistics out;
  int64_t size = 1;
  for (int64_t s : in.shape) size *= s;
  int64_t units = 0;
  const Runs r = make_runs(in, units);
  out.units = in.unit_dim >= 0 ? units : 0;
  const bool gradient = tolerance >= 0;
  const int64_t unit_slots = std::max<int64_t>(units, 1);
  const int threads =
      size >= kParallelSize ? int(std::min<int64_t>(max_threads(), r.count)) : 1;
  std::vector<Partial<B>> partials(std::max(threads, 1));
  for (auto &p : partials) {
    p.unit_bits.assign(unit_slots, 0);
    if (gradient) {
      p.unit_abs.assign(unit_slots, 0.0);
      p.unit_non_finite.assign(unit_slots, 0);
    }
  }
  auto run_first = [&](int part) {
    int64_t begin, end;
    chunk_range(r.count, int(partials.size()), part, begin, end);
    if (size == 0) return;
    if (gradient)
      first_pass<T, true>(data, r, begin, end, partials[part]);
    else
      first_pass<T, false>(data, r, begin, end, partials[part]);
  };
#if defined(NEARZERO_HAVE_OPENMP)
  if (partials.size() > 1) {
#pragma omp parallel for num_threads(int(partials.size())) schedule(static, 1)
    for (int part = 0; part < int(partials.size()); ++part) run_first(part);
  } else {
    run_first(0);
  }
#else
  run_first(0);
#endif
  Partial<B> &total = partials[0];
  for (size_t t = 1; t < partials.size(); ++t) {
    total.squares += partials[t].squares;
    for (int64_t u = 0; u < unit_slots; ++u) {
      total.unit_bits[u] |= partials[t].unit_bits[u];
      if (gradient) {
        total.unit_abs[u] += partials[t].unit_abs[u];
        total.unit_non_finite[u] += partials[t].unit_non_finite[u];
      }
    }
  }
  out.squared_norm = total.squares;
  if (in.unit_dim >= 0)
    for (int64_t u = 0; u < units; ++u) out.units_alive += total.unit_bits[u] != 0;
  if (!gradient) return out;
  double finite_abs = 0;
  int64_t non_finite = 0;
  for (int64_t u = 0; u < unit_slots; ++u) {
    non_finite += total.unit_non_finite[u];
    if (total.unit_non_finite[u] == 0) finite_abs += total.unit_abs[u];
  }
  out.finite = size - non_finite;
  const double level = size > 0 ? tolerance * finite_abs / double(size) : 0.0;
  std::vector<int64_t> near(partials.size(), 0);
  auto run_second = [&](int part) {
    int64_t begin, end;
    chunk_range(r.count, int(partials.size()), part, begin, end);
    if (size > 0) near[part] = count_at_most(data, r, begin, end, level);
  };
#if defined(NEARZERO_HAVE_OPENMP)
  if (partials.size() > 1) {
#pragma omp parallel for num_threads(int(partials.size())) schedule(static, 1)
    for (int part = 0; part < int(partials.size()); ++part) run_second(part);
  } else {
    run_second(0);
  }
#else
  run_second(0);
#endif
  out.near_zero = 0;
  for (int64_t c : near) out.near_zero += c;
  return out;
}

}  // namespace

TensorStatistics tensor_statistics_cpu(const StatisticsInput &in, double tolerance) {
  switch (in.dtype) {
    case StatisticsDtype::kFloat32: return statistics_typed<float>(in, tolerance);
    case StatisticsDtype::kFloat64: return statistics_typed<double>(in, tolerance);
    case StatisticsDtype::kFloat16: return statistics_typed<Half>(in, tolerance);
    case StatisticsDtype::kBFloat16: return statistics_typed<BFloat16>(in, tolerance);
  }
  throw std::invalid_argument("nearzero: unknown dtype code for tensor statistics");
}

}  // namespace nearzero
