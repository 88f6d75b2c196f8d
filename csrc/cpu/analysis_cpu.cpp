// filter_classifications on the CPU (see analysis_cpu.h): blocks of cells held term-major, so
// that each step of the filter is a loop across cells that the compiler vectorises.
#include "cpu/analysis_cpu.h"
#include "cpu/parallel.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>

namespace nearzero {
namespace {

// Cells filtered together: a block's planes stay in L1.
constexpr int64_t kBlockCells = 64;

template <typename Sum> using SumBits = std::conditional_t<sizeof(Sum) == 4, int32_t, int64_t>;

// |value| as an integer that orders like it, every NaN equal and above +inf (NumPy's order).
template <typename Sum> inline SumBits<Sum> magnitude_of(Sum value) {
  using Bits = SumBits<Sum>;
  constexpr Bits kInfinity = sizeof(Sum) == 4 ? Bits(0x7F800000) : Bits(0x7FF0000000000000);
  Bits bits;
  std::memcpy(&bits, &value, sizeof(bits));
  bits &= std::numeric_limits<Bits>::max();
  return bits > kInfinity ? Bits(kInfinity + 1) : bits;
}

// `value` where `keep`, else +0.
template <typename Sum> inline Sum zero_unless(bool keep, Sum value) {
  SumBits<Sum> bits;
  std::memcpy(&bits, &value, sizeof(bits));
  bits &= -SumBits<Sum>(keep);
  std::memcpy(&value, &bits, sizeof(bits));
  return value;
}

template <int N, typename T> using BlockPlanes = T[N][kBlockCells];

// The row of `values` in the order of `rank`: out[i] = values[t][i] for the t with
// rank[t][i] == r. Selects rather than scatters, so that it vectorises.
template <int N, typename T>
void row_in_order(const BlockPlanes<N, int32_t> &rank, const BlockPlanes<N, T> &values, int r,
                  T *out) {
  for (int i = 0; i < kBlockCells; ++i) {
    T value = values[0][i];
    for (int t = 1; t < N; ++t) value = rank[t][i] == r ? values[t][i] : value;
    out[i] = value;
  }
}

// f(0), ..., f(N - 1) with compile-time indices, so that loops over terms leave straight-line
// code per cell for the compiler to vectorise across cells.
template <typename F, size_t... I> inline void for_each_term(F f, std::index_sequence<I...>) {
  (f(std::integral_constant<int, int(I)>()), ...);
}
template <int N, typename F> inline void for_each_term(F f) {
  for_each_term(f, std::make_index_sequence<N>());
}

// rank[t][i]: how many terms u of cell i come before t, where `before(u, t, i)` is a strict
// order on the cell's terms.
template <int N, typename Before>
void rank_terms(BlockPlanes<N, int32_t> &rank, Before before) {
  for_each_term<N>([&](auto t) {
    for (int i = 0; i < kBlockCells; ++i) {
      int32_t count = 0;
      for_each_term<N>([&](auto u) {
        if constexpr (u != t) count += before(u, t, i);
      });
      rank[t][i] = count;
    }
  });
}

// One block of cells, term-major ([term][cell]), so that every step is a loop over the
// block's cells that the compiler vectorises. Each order is kept as ranks (a term's position
// in it), found by comparing every pair of terms; the keys are distinct within a cell.
template <int N, typename Count, typename Sum> struct FilterBlock {
  BlockPlanes<N, Count> count;
  BlockPlanes<N, Sum> sum;
  BlockPlanes<N, SumBits<Sum>> magnitude;
  BlockPlanes<N, int32_t> sum_rank;    // step 1: by |sum|, ties by term index
  BlockPlanes<N, int32_t> count_rank;  // step 2: by count, ties by descending sum_rank
  BlockPlanes<N, int32_t> position;    // step 3: by descending kept count, ties by count_rank
  BlockPlanes<N, int32_t> kept;        // 0 or 1
  BlockPlanes<N, int32_t> kept_by_count;  // in step-2 order
  BlockPlanes<N, Count> kept_count;
  BlockPlanes<N, Sum> kept_sum;

  void filter(Sum sum_fraction, double count_fraction);
};

template <int N, typename Count, typename Sum>
void FilterBlock<N, Count, Sum>::filter(Sum sum_fraction, double count_fraction) {
  constexpr int kCells = kBlockCells;
  // Step 1: rank by |sum| (an earlier term first among equals); running extents in that order.
  for (int t = 0; t < N; ++t)
    for (int i = 0; i < kCells; ++i) magnitude[t][i] = magnitude_of(sum[t][i]);
  rank_terms<N>(sum_rank, [&](int u, int t, int i) {
    return u < t ? magnitude[u][i] <= magnitude[t][i] : magnitude[u][i] < magnitude[t][i];
  });
  // The extents never decrease, so step 1 keeps a tail of its order: the ranks from the
  // first extent reaching the limit (none when the limit is NaN).
  Sum positive[kCells] = {}, negative[kCells] = {}, extent[N][kCells];
  for (int r = 0; r < N; ++r) {
    Sum by_sum[kCells];
    row_in_order<N>(sum_rank, sum, r, by_sum);
    for (int i = 0; i < kCells; ++i) {
      positive[i] += zero_unless(by_sum[i] > 0, by_sum[i]);  // the reference adds zeros too
      negative[i] -= zero_unless(by_sum[i] < 0, by_sum[i]);
      extent[r][i] = std::max(positive[i], negative[i]);
    }
  }
  int32_t dropped[kCells] = {};
  for (int r = 0; r < N; ++r)
    for (int i = 0; i < kCells; ++i)
      dropped[i] += !(extent[r][i] >= extent[N - 1][i] * sum_fraction);
  for (int t = 0; t < N; ++t)
    for (int i = 0; i < kCells; ++i) kept[t][i] = sum_rank[t][i] >= dropped[i];

  // Step 2: rank by count, equal counts by descending step-1 rank; running counts in order.
  rank_terms<N>(count_rank, [&](int u, int t, int i) {
    return (count[u][i] < count[t][i]) |
           ((count[u][i] == count[t][i]) & (sum_rank[u][i] > sum_rank[t][i]));
  });
  // The reference sums in int64 and compares as double. Sums of nine 32-bit counts are exact
  // in double, which vectorises where int64-to-double conversion does not.
  using Running = std::conditional_t<sizeof(Count) == 4, double, int64_t>;
  Running total[kCells] = {}, cumulative[kCells] = {};
  for (int t = 0; t < N; ++t)
    for (int i = 0; i < kCells; ++i) total[i] += Running(count[t][i]);
  for (int r = 0; r < N; ++r) {
    Count by_count[kCells];
    row_in_order<N>(count_rank, count, r, by_count);
    for (int i = 0; i < kCells; ++i) {
      cumulative[i] += Running(by_count[i]);
      kept_by_count[r][i] = double(cumulative[i]) >= double(total[i]) * count_fraction;
    }
  }
  for (int r = 0; r < N; ++r)
    for (int t = 0; t < N; ++t)
      for (int i = 0; i < kCells; ++i)
        kept[t][i] |= (count_rank[t][i] == r) & kept_by_count[r][i];

  // Step 3: rank by descending kept count, equal ones by descending step-2 rank. As the
  // reference multiplies by the kept flag, a dropped negative sum becomes -0.0.
  for (int t = 0; t < N; ++t)
    for (int i = 0; i < kCells; ++i) {
      kept_count[t][i] = count[t][i] * Count(kept[t][i]);
      kept_sum[t][i] = sum[t][i] * Sum(kept[t][i]);
    }
  rank_terms<N>(position, [&](int u, int t, int i) {
    return (kept_count[u][i] > kept_count[t][i]) |
           ((kept_count[u][i] == kept_count[t][i]) & (count_rank[u][i] > count_rank[t][i]));
  });
}

// A block's results, position by position, before they go to the result planes in runs.
template <int N, typename Count, typename Sum, typename Name> struct ResultRows {
  BlockPlanes<N, Count> counts;
  BlockPlanes<N, Sum> sums;
  BlockPlanes<N, Name> names;
};

}  // namespace

template <int N, typename Count, typename Sum, typename Name>
void filter_classifications_cpu(TermPlanes<Count> counts, TermPlanes<Sum> sums, int64_t cells,
                                double completeness, const Name *term_names,
                                FilteredPlanes<Count, Sum, Name> out) {
  // The reference multiplies a Sum array by the Python float (1 - completeness): in Sum.
  const Sum sum_fraction = Sum(1 - completeness);
  const double count_fraction = 1 - completeness;
  const int64_t blocks = (cells + kBlockCells - 1) / kBlockCells;
  struct Thread {
    std::unique_ptr<FilterBlock<N, Count, Sum>> block;
    std::unique_ptr<ResultRows<N, Count, Sum, Name>> rows;
  };
  ParallelRun run;
  run.tasks(
      blocks,
      [] {
        return Thread{std::make_unique<FilterBlock<N, Count, Sum>>(),
                      std::make_unique<ResultRows<N, Count, Sum, Name>>()};
      },
      [&](Thread &thread, int64_t b) {
      auto &block = thread.block;
      auto &rows = thread.rows;
      const int64_t begin = b * kBlockCells;
      const int n = int(std::min(kBlockCells, cells - begin));
      for (int t = 0; t < N; ++t) {  // a short run of each plane; idle cells hold zeros
        counts.load_run(t, begin, n, block->count[t]);
        sums.load_run(t, begin, n, block->sum[t]);
        std::fill(block->count[t] + n, block->count[t] + kBlockCells, Count(0));
        std::fill(block->sum[t] + n, block->sum[t] + kBlockCells, Sum(0));
      }
      block->filter(sum_fraction, count_fraction);
      for (int t = 0; t < N; ++t)
        for (int i = 0; i < n; ++i) {
          const int p = block->position[t][i];
          rows->counts[p][i] = block->kept_count[t][i];
          rows->sums[p][i] = block->kept_sum[t][i];
          rows->names[p][i] = term_names[t];
        }
      for (int p = 0; p < N; ++p) {
        std::copy(rows->counts[p], rows->counts[p] + n, out.counts + p * cells + begin);
        std::copy(rows->sums[p], rows->sums[p] + n, out.sums + p * cells + begin);
        std::copy(rows->names[p], rows->names[p] + n, out.names + p * cells + begin);
      }
      },
      [](Thread &) {}, cells >= kAnalysisParallelCells);
  run.finish();
}

// The combinations the binding dispatches to: 3 or 9 terms (names of 4 or 8 bytes), int32 or
// int64 counts, float or double sums.
#define NEARZERO_FILTER(N, Count, Sum, Name)                                                      \
  template void filter_classifications_cpu<N, Count, Sum, Name>(                                  \
      TermPlanes<Count>, TermPlanes<Sum>, int64_t, double, const Name *,                          \
      FilteredPlanes<Count, Sum, Name>);
#define NEARZERO_FILTER_SUMS(N, Count, Name)                                                      \
  NEARZERO_FILTER(N, Count, float, Name) NEARZERO_FILTER(N, Count, double, Name)
NEARZERO_FILTER_SUMS(3, int32_t, uint32_t)
NEARZERO_FILTER_SUMS(3, int64_t, uint32_t)
NEARZERO_FILTER_SUMS(9, int32_t, uint64_t)
NEARZERO_FILTER_SUMS(9, int64_t, uint64_t)
#undef NEARZERO_FILTER_SUMS
#undef NEARZERO_FILTER

}  // namespace nearzero
