// The statistics pass of tensor_statistics_cpu.cpp for one vector width. No include guard and no
// includes: that file includes it once per width, each time inside a namespace of its own that
// defines kVectorBytes (16: SSE2 or NEON, 32: AVX2, 64: AVX-512) and, for the wide ones, under
// the matching `#pragma GCC target`, so every function here, templates and lambdas included, is
// compiled for that instruction set. The types it reads (Reader, Runs, Partial) come from there.

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

// kVectorBytes-wide vectors (GCC/Clang vector extensions), else scalars.
#if defined(__GNUC__) || defined(__clang__)
template <typename V> struct Vec {
  static constexpr int kWidth = kVectorBytes / sizeof(V);
  using Bits = typename Reader<V>::Bits;
  typedef V Values __attribute__((vector_size(kVectorBytes)));
  typedef Bits Ints __attribute__((vector_size(kVectorBytes)));
};

// The lanes of a kBytes-wide vector of E combined with `op`: with GCC by log2(lanes) rotations
// of the whole vector by constant shuffles (registers only), else lane by lane.
template <typename E, int kBytes> struct LanesOf {
  typedef E type __attribute__((vector_size(kBytes)));
};
template <typename Index, int kShift, int... kLane>
Index rotation(std::integer_sequence<int, kLane...>) {
  return Index{((kLane + kShift) % int(sizeof...(kLane)))...};
}
template <int kBytes, typename E, typename Op, int kShift = kBytes / int(sizeof(E)) / 2>
E combine_lanes(typename LanesOf<E, kBytes>::type v, Op op) {
  constexpr int n = kBytes / int(sizeof(E));
#if !defined(__clang__)
  if constexpr (kShift == 0) {
    return v[0];
  } else {
    using Index =
        typename LanesOf<std::conditional_t<sizeof(E) == 4, int32_t, int64_t>, kBytes>::type;
    const Index rotate = rotation<Index, kShift>(std::make_integer_sequence<int, n>{});
    return combine_lanes<kBytes, E, Op, kShift / 2>(op(v, __builtin_shuffle(v, rotate)), op);
  }
#else
  E r = v[0];
  for (int l = 1; l < n; ++l) r = op(r, v[l]);
  return r;
#endif
}
#endif

// Running sums of one thread over consecutive contiguous values: squares in V lanes (kVectors
// independent sums, as a multiply-add waits for the one before), moved to float64 lanes every
// kChunk values; the OR of magnitude bits, |x| and the non-finite count of the current run.
template <typename V, bool kGradient> struct Accumulator {
  using B = typename Reader<V>::Bits;
  static constexpr B kExp = exponent_mask<B>();
#if defined(__GNUC__) || defined(__clang__)
  using Values = typename Vec<V>::Values;
  using Ints = typename Vec<V>::Ints;
  static constexpr int kWidth = Vec<V>::kWidth, kVectors = 4, kBlock = kVectors * kWidth;
  using Doubles = typename LanesOf<double, kWidth * int(sizeof(double))>::type;
  Values squares[kVectors] = {}, magnitudes[kVectors] = {};
  Ints bits = {}, bad = {};
  Doubles wide_squares = {};
#else
  static constexpr int kWidth = 1;
#endif
  V scalar_squares = 0, scalar_magnitude = 0;
  B scalar_bits = 0;
  int64_t scalar_bad = 0;
  int64_t pending = 0;  // values in the V lanes since the last move to float64
  double total_squares = 0;

  // Takes the longest prefix of x[0..n) that fills whole vectors (whole blocks of kVectors
  // vectors first); returns its length.
  template <typename T> int64_t contiguous(const T *x, int64_t n) {
#if defined(__GNUC__) || defined(__clang__)
    int64_t i = 0;
    for (; i + kBlock <= n; i += kBlock)
      for (int k = 0; k < kVectors; ++k) vector(x + i + k * kWidth, k);
    for (int k = 0; i + kWidth <= n; i += kWidth, ++k) vector(x + i, k);
    pending += i;
    return i;
#else
    (void)x, (void)n;
    return 0;
#endif
  }
#if defined(__GNUC__) || defined(__clang__)
  template <typename T> void vector(const T *x, int k) {
    Values v;
    if constexpr (std::is_same<T, V>::value) {
      std::memcpy(&v, x, sizeof(v));
    } else {
      for (int l = 0; l < kWidth; ++l) v[l] = Reader<T>::load(x + l);
    }
    squares[k] += v * v;
    const Ints m = (Ints)v & (~B(0) >> 1);  // a vector cast keeps the bits
    bits |= m;
    if (kGradient) {
      magnitudes[k] += (Values)m;
      bad -= (m & kExp) == kExp;  // a true comparison is all ones: -1
    }
  }
#endif
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
  // What a run gave, as end_run returns it.
  struct Run {
    B bits;
    double magnitude;
    int64_t non_finite;
  };
  // Ends a run: its OR of bits, |x| sum and non-finite count (returned by value, so that the
  // caller's store into the per-unit arrays cannot alias the running sums); keeps the squares.
  Run end_run() {
    Run run{scalar_bits, double(scalar_magnitude), scalar_bad};
    scalar_bits = 0, scalar_magnitude = 0, scalar_bad = 0;
#if defined(__GNUC__) || defined(__clang__)
    run.bits |= combine_lanes<kVectorBytes, B>(bits, [](auto a, auto b) { return a | b; });
    bits = Ints{};
    if (kGradient) {
      Values magnitude = magnitudes[0];
      for (int k = 1; k < kVectors; ++k) magnitude += magnitudes[k];
      run.magnitude += double(combine_lanes<kVectorBytes, V>(magnitude, [](auto a, auto b) {
        return a + b;
      }));
      run.non_finite += int64_t(combine_lanes<kVectorBytes, B>(bad, [](auto a, auto b) {
        return a + b;
      }));
      for (int k = 0; k < kVectors; ++k) magnitudes[k] = Values{};
      bad = Ints{};
    }
#endif
    if (pending >= kChunk) flush();
    return run;
  }
#if defined(__GNUC__) || defined(__clang__)
  // Ends a run without gradient statistics: its OR of bits as a whole vector, for the caller
  // to combine into the unit's vector (the lanes are combined once per unit, not per run).
  Ints end_run_bits() {
    Ints run = bits;
    run[0] |= scalar_bits;
    bits = Ints{}, scalar_bits = 0;
    if (pending >= kChunk) flush();
    return run;
  }
#endif
  void flush() {
    total_squares += double(scalar_squares);
    scalar_squares = 0;
#if defined(__GNUC__) || defined(__clang__)
    Values sum = squares[0];
    for (int k = 1; k < kVectors; ++k) sum += squares[k], squares[k] = Values{};
    squares[0] = Values{};
    wide_squares += __builtin_convertvector(sum, Doubles);
#endif
    pending = 0;
  }
  // The sum of squares so far (flush first).
  double squares_total() const {
    double total = total_squares;
#if defined(__GNUC__) || defined(__clang__)
    for (int l = 0; l < kWidth; ++l) total += wide_squares[l];
#endif
    return total;
  }
};

#if defined(__GNUC__) || defined(__clang__)
// Without gradient statistics, for runs that each lie in one unit with the unit dimension the
// innermost outer one and contiguous values (A_l and dJ/dA_l of a convolution, NCHW): one loop
// over runs [begin, end) that keeps no state between runs but four vectors of squares (a run's
// squares, summed apart, go to one of them in turn, so that no addition waits on the run just
// before) and the units' OR lanes. The generic walk costs several times the work of a short run.
template <typename V>
void plane_runs(const V *data, const Runs &r, int64_t begin, int64_t end,
                typename Reader<V>::Bits *unit_lanes, double &squares) {
  using B = typename Reader<V>::Bits;
  using Values = typename Vec<V>::Values;
  using Ints = typename Vec<V>::Ints;
  using Doubles = typename LanesOf<double, kVectorBytes / int(sizeof(V)) * 8>::type;
  constexpr int64_t w = Vec<V>::kWidth;
  constexpr B kMagnitude = ~B(0) >> 1;
  const int64_t n = r.run, units = r.sizes.back(), unit_stride = r.strides.back();
  const size_t outer = r.sizes.size() - 1;  // dimensions outside the units
  std::vector<int64_t> index(outer, 0);
  int64_t rest = begin / units, base = 0, unit = begin % units;
  for (size_t i = outer; i-- > 0;) {
    index[i] = rest % r.sizes[i];
    rest /= r.sizes[i];
    base += index[i] * r.strides[i];
  }
  Values s0 = {}, s1 = {}, s2 = {}, s3 = {};
  Doubles wide = {};
  double scalar = 0;
  int64_t pending = 0;
  for (int64_t k = begin; k < end;) {
    const int64_t stop = std::min(units, unit + (end - k));
    for (; unit < stop; ++unit, ++k) {
      const V *x = data + base + unit * unit_stride;
      Values t0 = {}, t1 = {}, t2 = {}, t3 = {};
      Ints bits = {};
      int64_t i = 0;
      for (; i + 4 * w <= n; i += 4 * w) {
        // Read as bits, used as values: one load each (reading the values again for the OR
        // doubled the loads, which bound the loop).
        Ints b0, b1, b2, b3;
        std::memcpy(&b0, x + i, sizeof(b0));
        std::memcpy(&b1, x + i + w, sizeof(b1));
        std::memcpy(&b2, x + i + 2 * w, sizeof(b2));
        std::memcpy(&b3, x + i + 3 * w, sizeof(b3));
        const Values v0 = (Values)b0, v1 = (Values)b1, v2 = (Values)b2, v3 = (Values)b3;
        t0 += v0 * v0, t1 += v1 * v1, t2 += v2 * v2, t3 += v3 * v3;
        bits |= (b0 | b1) | (b2 | b3);
      }
      for (; i + w <= n; i += w) {
        Values v;
        std::memcpy(&v, x + i, sizeof(v));
        t0 += v * v;
        bits |= (Ints)v;
      }
      for (; i < n; ++i) {
        scalar += double(x[i]) * double(x[i]);
        bits[0] |= magnitude_bits<V, B>(x[i]);
      }
      const Values run = (t0 + t1) + (t2 + t3) + s0;  // s0 last had a run four runs ago
      s0 = s1, s1 = s2, s2 = s3, s3 = run;
      Ints lanes;
      std::memcpy(&lanes, unit_lanes + unit * w, sizeof(lanes));
      lanes |= bits & kMagnitude;
      std::memcpy(unit_lanes + unit * w, &lanes, sizeof(lanes));
      pending += n;
      if (pending >= kChunk) {  // float lanes hold at most about kChunk values' squares
        wide += __builtin_convertvector((s0 + s1) + (s2 + s3), Doubles);
        s0 = s1 = s2 = s3 = Values{};
        pending = 0;
      }
    }
    if (unit == units) {  // the next outer position
      unit = 0;
      for (size_t i = outer; i-- > 0;) {
        base += r.strides[i];
        if (++index[i] < r.sizes[i]) break;
        base -= r.strides[i] * r.sizes[i];
        index[i] = 0;
      }
    }
  }
  wide += __builtin_convertvector((s0 + s1) + (s2 + s3), Doubles);
  for (int64_t l = 0; l < w; ++l) scalar += wide[l];
  squares += scalar;
}
#endif

template <typename T, bool kGradient>
void first_pass(const T *data, const Runs &r, int64_t begin, int64_t end,
                Partial<typename Reader<T>::Bits> &p) {
  using V = typename Reader<T>::Value;
  using B = typename Reader<T>::Bits;
  constexpr B kExp = exponent_mask<B>();
  const int64_t n = r.run, step = r.run_stride;
  Accumulator<V, kGradient> acc;
  B *const __restrict unit_bits = p.unit_bits.data();
  double *const __restrict unit_abs = kGradient ? p.unit_abs.data() : nullptr;
  int64_t *const __restrict unit_non_finite = kGradient ? p.unit_non_finite.data() : nullptr;
#if defined(__GNUC__) || defined(__clang__)
  // Without gradient statistics (A_l, dJ/dA_l) a unit's OR stays a vector over its runs: a
  // run's lane combine is a chain of shuffles that costs more than a short run itself (a
  // convolution output's H*W values per unit and sample).
  // Plain lanes (kWidth per unit), read and written with memcpy: no over-aligned vector type
  // in a container.
  using Ints = typename Vec<V>::Ints;
  constexpr int64_t w = Vec<V>::kWidth;
  std::vector<B> unit_lanes(!kGradient && !r.run_is_unit ? p.unit_bits.size() * w : 0);
  if constexpr (!kGradient && std::is_same<T, V>::value) {
    if (!r.run_is_unit && step == 1 && r.unit_outer >= 0 &&
        r.unit_outer + 1 == int(r.sizes.size())) {
      plane_runs<V>(data, r, begin, end, unit_lanes.data(), p.squares);
      for (size_t u = 0; u < unit_lanes.size() / w; ++u)
        for (int64_t l = 0; l < w; ++l) unit_bits[u] |= unit_lanes[u * w + l];
      return;
    }
  }
#endif
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
            std::memcpy(&b, unit_bits + i, sizeof(b));
            acc.squares[0] += v * v;
            b |= (Ints)v & (~B(0) >> 1);
            std::memcpy(unit_bits + i, &b, sizeof(b));
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
        unit_bits[i] |= m;
        if (kGradient) {
          unit_abs[i] += double(std::fabs(v));
          unit_non_finite[i] += (m & kExp) == kExp;
        }
      }
      return;
    }
    int64_t i = 0;
    if (step == 1) {
      for (; i < n;) {  // whole vectors, moving the squares to float64 every kChunk values
        const int64_t taken = acc.contiguous(x + i, std::min(n - i, kChunk));
        if (taken == 0) break;
        i += taken;
        if (acc.pending >= kChunk) acc.flush();
      }
    }
    for (; i < n; ++i) acc.one(Reader<T>::load(x + i * step));
#if defined(__GNUC__) || defined(__clang__)
    if constexpr (!kGradient) {
      Ints lanes;
      std::memcpy(&lanes, unit_lanes.data() + unit * w, sizeof(lanes));
      lanes |= acc.end_run_bits();
      std::memcpy(unit_lanes.data() + unit * w, &lanes, sizeof(lanes));
      return;
    }
#endif
    const auto run = acc.end_run();
    unit_bits[unit] |= run.bits;
    if (kGradient) unit_abs[unit] += run.magnitude, unit_non_finite[unit] += run.non_finite;
  });
#if defined(__GNUC__) || defined(__clang__)
  for (size_t u = 0; u < unit_lanes.size() / w; ++u)
    for (int64_t l = 0; l < w; ++l) unit_bits[u] |= unit_lanes[u * w + l];
#endif
  acc.flush();
  p.squares += acc.squares_total();
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
    int64_t i = 0;
#if defined(__GNUC__) || defined(__clang__)
    if (step == 1) {
      using Values = typename Vec<V>::Values;
      using Ints = typename Vec<V>::Ints;
      using B = typename Reader<V>::Bits;
      constexpr int w = Vec<V>::kWidth;
      const Values limits = Values{} + limit;
      while (i + w <= n) {  // lane counts of at most kChunk values, then added up
        Ints counts{};
        const int64_t stop = i + std::min((n - i) / w * w, kChunk);
        for (; i < stop; i += w) {
          Values v;
          if constexpr (std::is_same<T, V>::value) {
            std::memcpy(&v, x + i, sizeof(v));
          } else {
            for (int l = 0; l < w; ++l) v[l] = Reader<T>::load(x + i + l);
          }
          const Values magnitude = (Values)((Ints)v & (~B(0) >> 1));
          counts -= (Ints)(magnitude <= limits);  // a true comparison is all ones: -1
        }
        total += int64_t(combine_lanes<kVectorBytes, B>(counts, [](auto a, auto b) {
          return a + b;
        }));
      }
    }
#endif
    for (; i < n; ++i) total += std::fabs(Reader<T>::load(x + i * step)) <= limit;
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
  // The parts run as tasks of one ParallelRun (parallel.h): any team size, exceptions carried
  // out, denormals kept.
  ParallelRun run;
  const int64_t parts = int64_t(partials.size());
  run.for_each(parts, [&](int64_t part) { run_first(int(part)); }, parts > 1);
  run.finish();
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
  run.for_each(parts, [&](int64_t part) { run_second(int(part)); }, parts > 1);
  run.finish();
  out.near_zero = 0;
  for (int64_t c : near) out.near_zero += c;
  return out;
}

TensorStatistics statistics(const StatisticsInput &in, double tolerance) {
  switch (in.dtype) {
    case StatisticsDtype::kFloat32: return statistics_typed<float>(in, tolerance);
    case StatisticsDtype::kFloat64: return statistics_typed<double>(in, tolerance);
    case StatisticsDtype::kFloat16: return statistics_typed<Half>(in, tolerance);
    case StatisticsDtype::kBFloat16: return statistics_typed<BFloat16>(in, tolerance);
  }
  throw std::invalid_argument("nearzero: unknown dtype code for tensor statistics");
}
