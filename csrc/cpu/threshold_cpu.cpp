// Radix selection of |x| order statistics for `nearzero.threshold` (SPEC §2), CPU: the passes
// over the data for the levels of common/radix_select.h, in fixed parts with a histogram each.
#include "cpu/threshold_cpu.h"
#include "cpu/parallel.h"

#include <algorithm>
#include <limits>
#include <vector>

namespace nearzero {
namespace {

using radix::kBins;
// A bucket this small is finished by collecting it and using nth_element.
constexpr int64_t kCollectLimit = 1 << 16;
// Elements per part of a pass (one task, one histogram, one interrupt check).
constexpr int64_t kPartElements = 1 << 16;

}  // namespace

template <typename T>
AbsOrderStatistics<T> select_abs_order_statistics(const T *x, int64_t n, double fraction,
                                                  int64_t repeat) {
  using Key = typename radix::KeyTraits<T>::Key;
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

  radix::Select<T> select;
  while (select.next_level()) {
    const radix::Level<Key> level = select.level();
    std::fill(part_hist.begin(), part_hist.end(), 0);
    each_part([&](int64_t begin, int64_t end, int64_t part) {
      int64_t *hist = part_hist.data() + part * kBins;
      int64_t nans = 0;
      for (int64_t i = begin; i < end; ++i) {
        const Key key = radix::abs_key(x[i]);
        if (radix::is_nan_key(key)) {
          ++nans;
          continue;
        }
        if (level.holds(key)) ++hist[level.digit(key)];
      }
      nan_per_part[size_t(part)] = nans;
    });
    std::vector<int64_t> hist(size_t(level.bins()), 0);
    for (int64_t t = 0; t < parts; ++t)
      for (size_t d = 0; d < hist.size(); ++d) hist[d] += part_hist[size_t(t * kBins) + d];

    if (!select.started()) {
      int64_t nan_count = 0;
      for (int64_t t = 0; t < parts; ++t) nan_count += nan_per_part[size_t(t)];
      if (!select.start(n, nan_count, fraction, repeat)) return select.empty();
    }
    select.locate(hist.data());
    if (select.split()) {
      const Key mask = select.next_mask();
      const Key low_prefix = select.low_prefix(), high_prefix = select.high_prefix();
      std::vector<Key> lows(size_t(parts), Key(0));
      std::vector<Key> highs(size_t(parts), std::numeric_limits<Key>::max());
      each_part([&](int64_t begin, int64_t end, int64_t part) {
        Key low = 0, high = std::numeric_limits<Key>::max();
        for (int64_t i = begin; i < end; ++i) {
          const Key key = radix::abs_key(x[i]);
          if (radix::is_nan_key(key)) continue;
          const Key masked = key & mask;
          if (masked == low_prefix) low = std::max(low, key);
          if (masked == high_prefix) high = std::min(high, key);
        }
        lows[size_t(part)] = low;
        highs[size_t(part)] = high;
      });
      return select.result(*std::max_element(lows.begin(), lows.end()),
                           *std::min_element(highs.begin(), highs.end()));
    }
    select.descend();
    if (select.more_levels() && select.bucket() <= std::max<int64_t>(kCollectLimit, n / 64)) {
      const radix::Level<Key> bucket = select.level();
      std::vector<std::vector<Key>> collected;
      collected.resize(size_t(parts));
      each_part([&](int64_t begin, int64_t end, int64_t part) {
        auto &mine = collected[size_t(part)];
        for (int64_t i = begin; i < end; ++i) {
          const Key key = radix::abs_key(x[i]);
          if (!radix::is_nan_key(key) && bucket.holds(key)) mine.push_back(key);
        }
      });
      std::vector<Key> keys;
      keys.reserve(size_t(select.bucket()));
      for (auto &p : collected) keys.insert(keys.end(), p.begin(), p.end());
      const size_t rank_low = size_t(select.rank_low()), rank_high = size_t(select.rank_high());
      std::nth_element(keys.begin(), keys.begin() + rank_low, keys.end());
      const Key low = keys[rank_low];
      std::nth_element(keys.begin() + rank_low, keys.begin() + rank_high, keys.end());
      return select.result(low, keys[rank_high]);
    }
  }
  return select.settled();
}

template AbsOrderStatistics<float> select_abs_order_statistics<float>(const float *, int64_t,
                                                                      double, int64_t);
template AbsOrderStatistics<double> select_abs_order_statistics<double>(const double *, int64_t,
                                                                        double, int64_t);

}  // namespace nearzero
