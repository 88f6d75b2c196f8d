// Per-cell filtering and grouping of classify results, CPU (see analysis_cpu.h). Filtering
// works on blocks of cells held term-major, so that each step vectorises across cells; grouping
// numbers the cells' patterns with a hash table and places each cell with a counting sort.
#include "cpu/analysis_cpu.h"
#include "common/parallel.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <numeric>
#include <type_traits>
#include <utility>

namespace nearzero {
namespace {

// Below this many cells a parallel region costs more than it saves.
constexpr int64_t kParallelCells = 4096;
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

// Numbers non-negative keys in order of first appearance: an open-addressing table where -1
// marks an empty slot, grown at half load.
class KeyNumbering {
public:
  // The key's number, a new one for a key not seen before.
  int32_t number(int64_t key) {
    const size_t slot = find(key);
    if (slot_key_[slot] == key) return slot_number_[slot];
    const int32_t number = int32_t(keys_.size());
    keys_.push_back(key);
    slot_key_[slot] = key;
    slot_number_[slot] = number;
    if (2 * keys_.size() > slot_key_.size()) grow();
    return number;
  }
  // The keys by number.
  const std::vector<int64_t> &keys() const { return keys_; }

private:
  size_t find(int64_t key) const {
    const size_t mask = slot_key_.size() - 1;
    size_t slot = size_t((uint64_t(key) * 0x9E3779B97F4A7C15ull) >> shift_);
    while (slot_key_[slot] != -1 && slot_key_[slot] != key) slot = (slot + 1) & mask;
    return slot;
  }
  void grow() {
    --shift_;
    slot_key_.assign(slot_key_.size() * 2, -1);
    slot_number_.resize(slot_key_.size());
    for (size_t number = 0; number < keys_.size(); ++number) {
      const size_t slot = find(keys_[number]);
      slot_key_[slot] = keys_[number];
      slot_number_[slot] = int32_t(number);
    }
  }

  int shift_ = 64 - 10;  // the table has 2^(64 - shift_) slots
  std::vector<int64_t> slot_key_ = std::vector<int64_t>(1024, -1);
  std::vector<int32_t> slot_number_ = std::vector<int32_t>(1024);
  std::vector<int64_t> keys_;
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
#pragma omp parallel if (cells >= kParallelCells)
  {
    auto block = std::make_unique<FilterBlock<N, Count, Sum>>();
    auto rows = std::make_unique<ResultRows<N, Count, Sum, Name>>();
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
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
    }
  }
}

template <typename Count, int NameChars>
int pattern_keys_cpu(TermPlanes<Count> counts, TermPlanes<uint32_t> names, int n_terms,
                     int64_t cells, const int8_t *digit_table, const uint8_t *mask,
                     int64_t *keys) {
  int problems = 0;
  const int64_t blocks = (cells + kBlockCells - 1) / kBlockCells;
#pragma omp parallel for schedule(static) reduction(| : problems) if (cells >= kParallelCells)
  for (int64_t b = 0; b < blocks; ++b) {
    // A block at a time, position by position, so that each plane is read in runs.
    const int64_t begin = b * kBlockCells;
    const int n = int(std::min(kBlockCells, cells - begin));
    int64_t key[kBlockCells] = {};
    for (int p = 0; p < n_terms; ++p)
      for (int i = 0; i < n; ++i) {
        int digit = p + 1;
        if (NameChars > 0) {
          uint32_t chars[2] = {0, 0};
          std::memcpy(chars, names.data + p * names.term_stride + (begin + i) * names.cell_stride,
                      NameChars * sizeof(uint32_t));
          digit = chars[0] < 128 && chars[1] < 128 ? digit_table[chars[0] * 128 + chars[1]] : -1;
        }
        const bool filled = counts.load(p, begin + i) != 0;
        const bool selected = mask == nullptr || mask[begin + i];
        problems |= (digit < 0 ? kUnknownTermName : 0) |
                    (digit == 0 && filled && selected ? kPlaceholderWithCount : 0);
        key[i] = (key[i] << 4) | (filled ? (digit & 15) : 0);
      }
    std::copy(key, key + n, keys + begin);
  }
  return problems;
}

CellGroups group_cells_cpu(const int64_t *keys, const uint8_t *mask, int64_t cells) {
  KeyNumbering numbering;
  std::vector<int32_t> group_of(cells, -1);
  std::vector<int64_t> sizes, first_cells;
  int64_t last_key = -1;
  int32_t last_group = -1;
  for (int64_t cell = 0; cell < cells; ++cell) {
    if (mask != nullptr && !mask[cell]) continue;
    if (keys[cell] != last_key) {  // neighbouring cells often share a pattern
      last_key = keys[cell];
      last_group = numbering.number(last_key);
      if (size_t(last_group) == sizes.size()) {
        sizes.push_back(0);
        first_cells.push_back(cell);
      }
    }
    group_of[cell] = last_group;
    ++sizes[last_group];
  }

  const std::vector<int64_t> &group_key = numbering.keys();
  std::vector<int32_t> ranking(group_key.size());
  std::iota(ranking.begin(), ranking.end(), 0);
  std::sort(ranking.begin(), ranking.end(), [&](int32_t a, int32_t b) {
    return sizes[a] != sizes[b] ? sizes[a] > sizes[b] : group_key[a] < group_key[b];
  });
  CellGroups groups;
  std::vector<int64_t> next(ranking.size());
  int64_t start = 0;
  for (int32_t g : ranking) {
    next[g] = start;
    start += sizes[g];
    groups.sizes.push_back(sizes[g]);
    groups.first_cells.push_back(first_cells[g]);
  }
  groups.selected = start;
  groups.destination.resize(cells);
  for (int64_t cell = 0; cell < cells; ++cell)
    groups.destination[cell] = group_of[cell] >= 0 ? next[group_of[cell]]++ : -1;
  return groups;
}

template <typename T>
void scatter_cells_cpu(TermPlanes<T> in, int n_terms, const CellGroups &groups, T *out) {
  // A plane at a time, read in one run; the writes go to one run per group. (Gathering in
  // group order instead would wait on a read per cell.)
  const int64_t cells = int64_t(groups.destination.size());
  const int64_t *destination = groups.destination.data();
  for (int p = 0; p < n_terms; ++p) {
    T *row = out + p * groups.selected;
#pragma omp parallel for schedule(static) if (cells >= kParallelCells)
    for (int64_t cell = 0; cell < cells; ++cell)
      if (destination[cell] >= 0) row[destination[cell]] = in.load(p, cell);
  }
}

// The combinations the binding dispatches to.
template void filter_classifications_cpu<3, int32_t, float, uint32_t>(
    TermPlanes<int32_t>, TermPlanes<float>, int64_t, double, const uint32_t *,
    FilteredPlanes<int32_t, float, uint32_t>);
template void filter_classifications_cpu<3, int32_t, double, uint32_t>(
    TermPlanes<int32_t>, TermPlanes<double>, int64_t, double, const uint32_t *,
    FilteredPlanes<int32_t, double, uint32_t>);
template void filter_classifications_cpu<3, int64_t, float, uint32_t>(
    TermPlanes<int64_t>, TermPlanes<float>, int64_t, double, const uint32_t *,
    FilteredPlanes<int64_t, float, uint32_t>);
template void filter_classifications_cpu<3, int64_t, double, uint32_t>(
    TermPlanes<int64_t>, TermPlanes<double>, int64_t, double, const uint32_t *,
    FilteredPlanes<int64_t, double, uint32_t>);
template void filter_classifications_cpu<9, int32_t, float, uint64_t>(
    TermPlanes<int32_t>, TermPlanes<float>, int64_t, double, const uint64_t *,
    FilteredPlanes<int32_t, float, uint64_t>);
template void filter_classifications_cpu<9, int32_t, double, uint64_t>(
    TermPlanes<int32_t>, TermPlanes<double>, int64_t, double, const uint64_t *,
    FilteredPlanes<int32_t, double, uint64_t>);
template void filter_classifications_cpu<9, int64_t, float, uint64_t>(
    TermPlanes<int64_t>, TermPlanes<float>, int64_t, double, const uint64_t *,
    FilteredPlanes<int64_t, float, uint64_t>);
template void filter_classifications_cpu<9, int64_t, double, uint64_t>(
    TermPlanes<int64_t>, TermPlanes<double>, int64_t, double, const uint64_t *,
    FilteredPlanes<int64_t, double, uint64_t>);

template int pattern_keys_cpu<int32_t, 0>(TermPlanes<int32_t>, TermPlanes<uint32_t>, int,
                                          int64_t, const int8_t *, const uint8_t *, int64_t *);
template int pattern_keys_cpu<int32_t, 1>(TermPlanes<int32_t>, TermPlanes<uint32_t>, int,
                                          int64_t, const int8_t *, const uint8_t *, int64_t *);
template int pattern_keys_cpu<int32_t, 2>(TermPlanes<int32_t>, TermPlanes<uint32_t>, int,
                                          int64_t, const int8_t *, const uint8_t *, int64_t *);
template int pattern_keys_cpu<int64_t, 0>(TermPlanes<int64_t>, TermPlanes<uint32_t>, int,
                                          int64_t, const int8_t *, const uint8_t *, int64_t *);
template int pattern_keys_cpu<int64_t, 1>(TermPlanes<int64_t>, TermPlanes<uint32_t>, int,
                                          int64_t, const int8_t *, const uint8_t *, int64_t *);
template int pattern_keys_cpu<int64_t, 2>(TermPlanes<int64_t>, TermPlanes<uint32_t>, int,
                                          int64_t, const int8_t *, const uint8_t *, int64_t *);
template void scatter_cells_cpu<uint32_t>(TermPlanes<uint32_t>, int, const CellGroups &,
                                          uint32_t *);
template void scatter_cells_cpu<uint64_t>(TermPlanes<uint64_t>, int, const CellGroups &,
                                          uint64_t *);

}  // namespace nearzero
