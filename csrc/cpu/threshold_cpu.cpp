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
AbsOrderStatistics<T> select_abs_order_statistics(const T *x, int64_t n, double fraction) {
  using Traits = KeyTraits<T>;
  using Key = typename Traits::Key;
  const int threads = max_threads();
  std::vector<int64_t> thread_hist(int64_t(threads) * kBins);
  std::vector<int64_t> nan_per_thread(threads, 0);

  Key prefix = 0, prefix_mask = 0;
  int64_t rank_low = 0, rank_high = 0, count = 0, nan_count = 0;
  int shift = Traits::kValueBits;
  bool first_level = true;

  while (shift > 0) {
    const int width = std::min(kDigitBits, shift);
    shift -= width;
    const Key digit_mask = (Key(1) << width) - 1;
    std::fill(thread_hist.begin(), thread_hist.end(), 0);
#pragma omp parallel num_threads(threads)
    {
      const int t = thread_index();
      int64_t begin, end;
      chunk_range(n, threads, t, begin, end);
      int64_t *hist = thread_hist.data() + int64_t(t) * kBins;
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
      nan_per_thread[t] = nans;
    }
    std::vector<int64_t> hist(size_t(digit_mask) + 1, 0);
    for (int t = 0; t < threads; ++t)
      for (size_t d = 0; d < hist.size(); ++d) hist[d] += thread_hist[int64_t(t) * kBins + d];

    if (first_level) {
      for (int t = 0; t < threads; ++t) nan_count += nan_per_thread[t];
      count = n - nan_count;
      if (count <= 0) return {T(0), T(0), 0, nan_count};  // nothing to select: caller reports
      const double idx = double(count - 1) * fraction;
      rank_low = std::clamp<int64_t>(int64_t(std::floor(idx)), 0, count - 1);
      rank_high = std::clamp<int64_t>(int64_t(std::ceil(idx)), 0, count - 1);
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
      Key low = 0, high = std::numeric_limits<Key>::max();
#pragma omp parallel for reduction(max : low) reduction(min : high) num_threads(threads)
      for (int64_t i = 0; i < n; ++i) {
        const Key key = abs_key(x[i]);
        if (key > Traits::kInfinity) continue;
        const Key masked = key & next_mask;
        if (masked == prefix_low) low = std::max(low, key);
        if (masked == prefix_high) high = std::min(high, key);
      }
      return {key_value<T>(low), key_value<T>(high), count, nan_count};
    }
    prefix = prefix_low;
    prefix_mask = next_mask;
    const int64_t bucket = hist[digit_low];
    if (shift > 0 && bucket <= std::max<int64_t>(kCollectLimit, n / 64)) {
      std::vector<std::vector<Key>> parts(threads);
#pragma omp parallel num_threads(threads)
      {
        const int t = thread_index();
        int64_t begin, end;
        chunk_range(n, threads, t, begin, end);
        auto &mine = parts[t];
        for (int64_t i = begin; i < end; ++i) {
          const Key key = abs_key(x[i]);
          if (key <= Traits::kInfinity && (key & prefix_mask) == prefix) mine.push_back(key);
        }
      }
      std::vector<Key> keys;
      keys.reserve(size_t(bucket));
      for (auto &p : parts) keys.insert(keys.end(), p.begin(), p.end());
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
                                                                      double);
template AbsOrderStatistics<double> select_abs_order_statistics<double>(const double *, int64_t,
                                                                        double);

}  // namespace nearzero
