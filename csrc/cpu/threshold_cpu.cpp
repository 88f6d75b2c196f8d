// Radix selection of |x| order statistics for `nearzero.threshold` (SPEC §2).
// Non-negative IEEE floats order like their bit patterns, so |x| is selected digit by digit
// (11 bits a pass, histograms small enough for L1) over the keys bits(x) & ~sign.
#include "cpu/threshold_cpu.h"
#include "common/parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

namespace nearzero {
namespace {

constexpr int kDigitBits = 11;
constexpr int kBins = 1 << kDigitBits;
// A bucket this small is finished by collecting it and using nth_element.
constexpr int64_t kCollectLimit = 1 << 16;
// Elements per part of a pass (one task, one histogram, one interrupt check).
constexpr int64_t kPartElements = 1 << 16;

template <typename T> struct KeyTraits;
template <> struct KeyTraits<float> {
  using Key = uint32_t;
  static constexpr int kValueBits = 31;
  static constexpr Key kInfinity = 0x7F800000u;
};
template <> struct KeyTraits<double> {
  using Key = uint64_t;
  static constexpr int kValueBits = 63;
  static constexpr Key kInfinity = 0x7FF0000000000000ull;
};

template <typename T> inline typename KeyTraits<T>::Key abs_key(T v) {
  typename KeyTraits<T>::Key k;
  std::memcpy(&k, &v, sizeof(T));
  return k & ~(typename KeyTraits<T>::Key(1) << KeyTraits<T>::kValueBits);
}

template <typename T> inline T key_value(typename KeyTraits<T>::Key k) {
  T v;
  std::memcpy(&v, &k, sizeof(T));
  return v;
}

// Finds the digit holding 0-based `rank` in `hist`; turns `rank` into the rank inside it.
inline int locate_digit(const std::vector<int64_t> &hist, int64_t &rank) {
  for (int d = 0; d < int(hist.size()); ++d) {
    if (rank < hist[d]) return d;
    rank -= hist[d];
  }
  throw std::logic_error("nearzero: threshold selection lost an element (internal error)");
}

}  // namespace

template <typename T>
AbsOrderStatistics<T> select_abs_order_statistics(const T *x, int64_t n, double fraction,
                                                  int64_t repeat) {
  using Traits = KeyTraits<T>;
  using Key = typename Traits::Key;
  // The data is read in `parts` fixed pieces, each with its own histogram, whatever team of
  // threads runs them: results do not depend on the thread count.
  const int64_t parts = std::clamp<int64_t>(n / kPartElements, 1, 4 * int64_t(max_threads()));
  std::vector<int64_t> part_hist;
  resize_or_throw(part_hist, size_t(parts * kBins), "threshold histograms");
  std::vector<int64_t> nan_per_part(size_t(parts), 0);
  ParallelRun run;
  // body(begin, end, part) over the parts, with an interrupt check per part.
  auto each_part = [&](auto body) {
    run.for_each(parts, [&](int64_t part) {
      run.checkpoint();
      int64_t begin, end;
      chunk_range(n, parts, part, begin, end);
      body(begin, end, part);
    });
    run.finish();
  };

  Key prefix = 0, prefix_mask = 0;
  int64_t rank_low = 0, rank_high = 0, count = 0, nan_count = 0;
  int shift = Traits::kValueBits;
  bool first_level = true;

  while (shift > 0) {
    const int width = std::min(kDigitBits, shift);
    shift -= width;
    const Key digit_mask = (Key(1) << width) - 1;
    std::fill(part_hist.begin(), part_hist.end(), 0);
    each_part([&](int64_t begin, int64_t end, int64_t part) {
      int64_t *hist = part_hist.data() + part * kBins;
      int64_t nans = 0;
      for (int64_t i = begin; i < end; ++i) {
        const Key key = abs_key(x[i]);
        if (key > Traits::kInfinity) {
          ++nans;
          continue;
        }
        if ((key & prefix_mask) != prefix) continue;
        ++hist[(key >> shift) & digit_mask];
      }
      nan_per_part[size_t(part)] = nans;
    });
    std::vector<int64_t> hist(size_t(digit_mask) + 1, 0);
    for (int64_t t = 0; t < parts; ++t)
      for (size_t d = 0; d < hist.size(); ++d) hist[d] += part_hist[size_t(t * kBins) + d];

    if (first_level) {
      for (int64_t t = 0; t < parts; ++t) nan_count += nan_per_part[size_t(t)];
      count = (n - nan_count) * repeat;
      nan_count *= repeat;
      if (count <= 0) return {T(0), T(0), 0, nan_count};  // nothing to select: caller reports
      // Ranks among all `count` values; each distinct element stands for `repeat` of them.
      const double idx = double(count - 1) * fraction;
      rank_low = std::clamp<int64_t>(int64_t(std::floor(idx)), 0, count - 1) / repeat;
      rank_high = std::clamp<int64_t>(int64_t(std::ceil(idx)), 0, count - 1) / repeat;
      first_level = false;
    }
    const int digit_low = locate_digit(hist, rank_low);
    const int digit_high = locate_digit(hist, rank_high);
    const Key next_mask = prefix_mask | (digit_mask << shift);
    const Key prefix_low = prefix | (Key(digit_low) << shift);
    const Key prefix_high = prefix | (Key(digit_high) << shift);

    if (digit_low != digit_high) {
      // The two ranks straddle buckets, so low is the largest key of its bucket and high the
      // smallest of its own: one more pass finds both.
      std::vector<Key> lows(size_t(parts), Key(0));
      std::vector<Key> highs(size_t(parts), std::numeric_limits<Key>::max());
      each_part([&](int64_t begin, int64_t end, int64_t part) {
        Key low = 0, high = std::numeric_limits<Key>::max();
        for (int64_t i = begin; i < end; ++i) {
          const Key key = abs_key(x[i]);
          if (key > Traits::kInfinity) continue;
          const Key masked = key & next_mask;
          if (masked == prefix_low) low = std::max(low, key);
          if (masked == prefix_high) high = std::min(high, key);
        }
        lows[size_t(part)] = low;
        highs[size_t(part)] = high;
      });
      const Key low = *std::max_element(lows.begin(), lows.end());
      const Key high = *std::min_element(highs.begin(), highs.end());
      return {key_value<T>(low), key_value<T>(high), count, nan_count};
    }
    prefix = prefix_low;
    prefix_mask = next_mask;
    const int64_t bucket = hist[digit_low];
    if (shift > 0 && bucket <= std::max<int64_t>(kCollectLimit, n / 64)) {
      std::vector<std::vector<Key>> collected;
      collected.resize(size_t(parts));
      each_part([&](int64_t begin, int64_t end, int64_t part) {
        auto &mine = collected[size_t(part)];
        for (int64_t i = begin; i < end; ++i) {
          const Key key = abs_key(x[i]);
          if (key <= Traits::kInfinity && (key & prefix_mask) == prefix) mine.push_back(key);
        }
      });
      std::vector<Key> keys;
      keys.reserve(size_t(bucket));
      for (auto &p : collected) keys.insert(keys.end(), p.begin(), p.end());
      std::nth_element(keys.begin(), keys.begin() + rank_low, keys.end());
      const Key low = keys[size_t(rank_low)];
      std::nth_element(keys.begin() + rank_low, keys.begin() + rank_high, keys.end());
      return {key_value<T>(low), key_value<T>(keys[size_t(rank_high)]), count, nan_count};
    }
  }
  // Every bit is fixed: both ranks hold the same value.
  return {key_value<T>(prefix), key_value<T>(prefix), count, nan_count};
}

template AbsOrderStatistics<float> select_abs_order_statistics<float>(const float *, int64_t,
                                                                      double, int64_t);
template AbsOrderStatistics<double> select_abs_order_statistics<double>(const double *, int64_t,
                                                                        double, int64_t);

}  // namespace nearzero
