// Packing for the fused matmul kernel: rows of x grouped by (k block, class), panels of y split
// into per-class slots, and class bit masks over k for counts. Included by matmul_cpu.cpp only.
#pragma once
#include "common/classify_rule.h"
#include "cpu/matmul_cpu.h"

#include <cmath>
#include <cstdint>
#include <vector>

namespace nearzero {
namespace matmul_detail {

constexpr int64_t kBlockK = 64;  // k per value panel slice: 64 x 3 x 32 floats = 24 KiB, in L1
template <typename T> constexpr int column_block() { return sizeof(T) == 4 ? 32 : 16; }

inline int popcount64(uint64_t v) { return __builtin_popcountll(v); }

// One row of x: its values grouped by k block, then by class within the block.
template <typename T> struct PackedRow {
  std::vector<T> values;
  std::vector<uint16_t> offsets;   // k - (k block start) of each value
  std::vector<int64_t> bounds;     // [k block * 3 + class], size blocks * 3 + 1
  std::vector<uint64_t> bits;      // [class][word] over the whole of k
  int64_t class_totals[3];
  bool complete;                   // no NaN: derived counts are exact
  bool finite;                     // no inf: 0 * inf cannot leak into other classes' sums
};

template <typename T>
void pack_row(const MatmulProblem<T> &p, const T *x_row, int64_t words, PackedRow<T> &row) {
  const int64_t blocks = (p.k + kBlockK - 1) / kBlockK;
  row.bits.assign(size_t(3) * words, 0);
  row.bounds.assign(size_t(blocks) * 3 + 1, 0);
  row.values.resize(size_t(p.k));
  row.offsets.resize(size_t(p.k));
  row.complete = row.finite = true;
  row.class_totals[0] = row.class_totals[1] = row.class_totals[2] = 0;
  for (int64_t kk = 0; kk < p.k; ++kk) {
    const T v = x_row[kk * p.x_col_stride];
    const int c = classify_value(v, p.x_threshold);
    if (c == kNoClass) {
      row.complete = false;
      continue;
    }
    row.finite = row.finite && !std::isinf(v);
    ++row.class_totals[c];
    ++row.bounds[size_t(kk / kBlockK) * 3 + c + 1];
    row.bits[size_t(c) * words + (kk >> 6)] |= uint64_t(1) << (kk & 63);
  }
  for (size_t s = 1; s < row.bounds.size(); ++s) row.bounds[s] += row.bounds[s - 1];
  std::vector<int64_t> fill(row.bounds.begin(), row.bounds.end() - 1);
  for (int64_t kk = 0; kk < p.k; ++kk) {
    const T v = x_row[kk * p.x_col_stride];
    const int c = classify_value(v, p.x_threshold);
    if (c == kNoClass) continue;
    const int64_t at = fill[size_t(kk / kBlockK) * 3 + c]++;
    row.values[size_t(at)] = v;
    row.offsets[size_t(at)] = uint16_t(kk % kBlockK);
  }
}

// One block of B columns of y over the whole of k: values as [k][class][column] with the other
// classes' slots zero, read in L1-sized slices of kBlockK rows; class bit masks and totals.
constexpr int kValueSlots = 3;
template <typename T> struct ColumnPanel {
  std::vector<T> values;        // [k][class][column]
  std::vector<uint64_t> bits;   // [column][class][word]
  std::vector<int64_t> totals;  // [column][class]
  std::vector<uint8_t> complete;
};

template <typename T>
void pack_columns(const MatmulProblem<T> &p, const T *y, int64_t j0, int jn, int64_t words,
                  ColumnPanel<T> &panel) {
  constexpr int B = column_block<T>();
  const int64_t k_padded = (p.k + kBlockK - 1) / kBlockK * kBlockK;
  panel.values.assign(size_t(k_padded) * kValueSlots * B, T(0));
  panel.bits.assign(size_t(B) * 3 * words, 0);
  panel.totals.assign(size_t(B) * 3, 0);
  panel.complete.assign(B, 1);
  for (int64_t kk = 0; kk < p.k; ++kk) {
    const T *row = y + kk * p.y_row_stride + j0 * p.y_col_stride;
    T *slot = panel.values.data() + kk * kValueSlots * B;
    const uint64_t bit = uint64_t(1) << (kk & 63);
    for (int j = 0; j < jn; ++j) {
      const T v = row[j * p.y_col_stride];
      const int c = classify_value(v, p.y_threshold);
      if (c == kNoClass) {
        panel.complete[j] = 0;
        continue;
      }
      slot[c * B + j] = v;
      ++panel.totals[size_t(j) * 3 + c];
      panel.bits[(size_t(j) * 3 + c) * words + (kk >> 6)] |= bit;
    }
  }
}

}  // namespace matmul_detail
}  // namespace nearzero
