// group_classifications on the CPU (see analysis_cpu.h): each cell's pattern key, the keys
// numbered with a hash table, the cells placed in group order by a counting sort.
#include "cpu/analysis_cpu.h"
#include "cpu/parallel.h"

#include <atomic>

#include <algorithm>
#include <numeric>

namespace nearzero {
namespace {

// Cells whose keys are built together: a run of each plane at a time.
constexpr int64_t kKeyBlockCells = 64;

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

template <typename Count, int NameChars>
int pattern_keys_cpu(TermPlanes<Count> counts, TermPlanes<uint32_t> names, int n_terms,
                     int64_t cells, const int8_t *digit_table, const uint8_t *mask,
                     int64_t *keys) {
  std::atomic<int> problems{0};
  const int64_t blocks = (cells + kKeyBlockCells - 1) / kKeyBlockCells;
  ParallelRun run;
  run.for_each(blocks, [&](int64_t b) {
    // A block at a time, position by position, so that each plane is read in runs.
    const int64_t begin = b * kKeyBlockCells;
    const int n = int(std::min(kKeyBlockCells, cells - begin));
    int64_t key[kKeyBlockCells] = {};
    int found = 0;
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
        found |= (digit < 0 ? kUnknownTermName : 0) |
                 (digit == 0 && filled && selected ? kPlaceholderWithCount : 0);
        key[i] = (key[i] << 4) | (filled ? (digit & 15) : 0);
      }
    std::copy(key, key + n, keys + begin);
    problems |= found;
  }, cells >= kAnalysisParallelCells);
  run.finish();
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

constexpr int64_t kScatterPart = 1 << 16;  // cells per task of scatter_cells_cpu

template <typename T>
void scatter_cells_cpu(TermPlanes<T> in, int n_terms, const CellGroups &groups, T *out) {
  // A plane at a time, read in one run; the writes go to one run per group. (Gathering in
  // group order instead would wait on a read per cell.)
  const int64_t cells = int64_t(groups.destination.size());
  const int64_t *destination = groups.destination.data();
  for (int p = 0; p < n_terms; ++p) {
    T *row = out + p * groups.selected;
    ParallelRun run;
    run.for_each((cells + kScatterPart - 1) / kScatterPart, [&](int64_t part) {
      const int64_t end = std::min(cells, (part + 1) * kScatterPart);
      for (int64_t cell = part * kScatterPart; cell < end; ++cell)
        if (destination[cell] >= 0) row[destination[cell]] = in.load(p, cell);
    }, cells >= kAnalysisParallelCells);
    run.finish();
  }
}

// The combinations the binding dispatches to: int32 or int64 counts, each with names of 0
// (term positions), 1 or 2 UCS4 characters.
#define NEARZERO_PATTERN_KEYS(Count, NameChars)                                                   \
  template int pattern_keys_cpu<Count, NameChars>(TermPlanes<Count>, TermPlanes<uint32_t>, int,   \
                                                  int64_t, const int8_t *, const uint8_t *,       \
                                                  int64_t *);
#define NEARZERO_PATTERN_KEY_NAMES(Count)                                                         \
  NEARZERO_PATTERN_KEYS(Count, 0) NEARZERO_PATTERN_KEYS(Count, 1) NEARZERO_PATTERN_KEYS(Count, 2)
NEARZERO_PATTERN_KEY_NAMES(int32_t)
NEARZERO_PATTERN_KEY_NAMES(int64_t)
#undef NEARZERO_PATTERN_KEY_NAMES
#undef NEARZERO_PATTERN_KEYS

template void scatter_cells_cpu<uint32_t>(TermPlanes<uint32_t>, int, const CellGroups &,
                                          uint32_t *);
template void scatter_cells_cpu<uint64_t>(TermPlanes<uint64_t>, int, const CellGroups &,
                                          uint64_t *);

}  // namespace nearzero
