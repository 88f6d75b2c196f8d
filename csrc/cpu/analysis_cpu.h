// Per-cell work of the analysis helpers (SPEC §6), CPU: the three steps of
// filter_classifications (defined in analysis_cpu.cpp) and the pattern grouping of
// group_classifications (analysis_group_cpu.cpp). Bound in bindings/cpu_analysis.cpp; no Python.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

namespace nearzero {

// Below this many cells a parallel region costs more than it saves.
constexpr int64_t kAnalysisParallelCells = 4096;

// A (terms, cells) table read at byte strides, so the ops' term-major results and plain
// (cells, terms) arrays are both read in place, whatever their alignment.
template <typename T> struct TermPlanes {
  const char *data;
  int64_t term_stride;  // bytes
  int64_t cell_stride;  // bytes

  T load(int term, int64_t cell) const {
    T value;
    std::memcpy(&value, data + term * term_stride + cell * cell_stride, sizeof(T));
    return value;
  }

  // Cells [first, first + n) of one term into `out`.
  void load_run(int term, int64_t first, int n, T *out) const {
    const char *start = data + term * term_stride + first * cell_stride;
    if (cell_stride == int64_t(sizeof(T))) {
      std::memcpy(out, start, n * sizeof(T));
      return;
    }
    for (int i = 0; i < n; ++i) std::memcpy(out + i, start + i * cell_stride, sizeof(T));
  }
};

// Contiguous (terms, cells) results of one filter call.
template <typename Count, typename Sum, typename Name> struct FilteredPlanes {
  Count *counts;
  Sum *sums;
  Name *names;  // the name of the term at each position, copied from `term_names`
};

// filter_classifications on `cells` cells of N (3 or 9) terms: per cell, the terms kept by
// |sum| or by count, ordered by kept count (largest first), the others zeroed after them.
// Ties are broken exactly as analysis/filtering.py's `_filter_sorted`; NaN sums order last
// by |sum| and add to neither extent. `Name` holds one name (1 or 2 UCS4 characters).
template <int N, typename Count, typename Sum, typename Name>
void filter_classifications_cpu(TermPlanes<Count> counts, TermPlanes<Sum> sums, int64_t cells,
                                double completeness, const Name *term_names,
                                FilteredPlanes<Count, Sum, Name> out);

// What `pattern_keys_cpu` found wrong with the term names (bit flags).
enum PatternKeyProblem : int {
  kUnknownTermName = 1,         // some entry is not a name `digit_table` knows
  kPlaceholderWithCount = 2,    // a selected cell has a non-zero count at a placeholder
};

// Each cell's pattern key: per position (first position in the highest 4 bits) the term's
// digit where its count is non-zero, 0 where it is zero. `NameChars` (1 or 2) is the width of
// a name in UCS4 characters; with NameChars == 0 `names` is unused and position p holds term p
// (digit p + 1). `digit_table[first * 128 + second]` is a name's digit (1 + its index in the
// standard order), 0 for a placeholder, -1 for anything else. Every cell's names are checked;
// only selected cells (`mask` null or non-zero) for placeholder counts. Returns problem flags.
template <typename Count, int NameChars>
int pattern_keys_cpu(TermPlanes<Count> counts, TermPlanes<uint32_t> names, int n_terms,
                     int64_t cells, const int8_t *digit_table, const uint8_t *mask,
                     int64_t *keys);

// The selected cells grouped by key: largest group first, equal sizes by key ascending, cells
// in their order within a group.
struct CellGroups {
  std::vector<int64_t> destination;  // each cell's place in the grouped order; -1 if unselected
  int64_t selected = 0;              // selected cells
  std::vector<int64_t> sizes;        // cells per group
  std::vector<int64_t> first_cells;  // the first cell of each group
};
CellGroups group_cells_cpu(const int64_t *keys, const uint8_t *mask, int64_t cells);

// out[term * groups.selected + groups.destination[cell]] = in(term, cell) for the selected
// cells: the groups' rows, term-major.
template <typename T>
void scatter_cells_cpu(TermPlanes<T> in, int n_terms, const CellGroups &groups, T *out);

}  // namespace nearzero
