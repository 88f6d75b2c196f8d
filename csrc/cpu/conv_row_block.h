// The row side of the kernel-gradient kernel: a tile of rows' values of one k block, grouped
// by class with a branch-free appender. Included by conv_filter_grad_cpu.cpp only.
#pragma once
#include "common/classify_rule.h"
#include "cpu/conv_tile.h"

#include <cstdint>
#include <vector>

namespace nearzero {
namespace conv_detail {

// Room of one list: a block's entries and one vector more, since the AVX-512 appender stores
// whole vectors of which only the leading lanes count.
constexpr int64_t kRowListStride = kBlockK + 16;

// The row side of one k block for a tile of rows: per row, its values and in-block offsets in
// three per-class lists.
template <typename T> struct RowBlock {
  std::vector<T> values;          // [row][class][kRowListStride]
  std::vector<PanelOffset> offsets;  // [row][class][kRowListStride]
  std::vector<int32_t> lengths;   // [row][class]
  std::vector<uint8_t> infinite;  // [row]: some value is +-inf

  void resize(int64_t rows) {
    values.resize(size_t(rows) * 3 * kRowListStride);
    offsets.resize(size_t(rows) * 3 * kRowListStride);
    lengths.resize(size_t(rows) * 3);
    infinite.resize(size_t(rows));
  }
};

template <typename T> inline RowView<T> row_view(const RowBlock<T> &block, int64_t row) {
  RowView<T> view;
  for (int a = 0; a < 3; ++a) {
    view.values[a] = block.values.data() + (row * 3 + a) * kRowListStride;
    view.offsets[a] = block.offsets.data() + (row * 3 + a) * kRowListStride;
    view.lengths[a] = block.lengths[size_t(row * 3 + a)];
  }
  view.infinite = block.infinite[size_t(row)] != 0;
  return view;
}

// Fills one row of a RowBlock. Every value is written to all three lists and only its class's
// list advances: branch-free, since classes of real data are unpredictable.
template <typename T> class RowAppender {
public:
  RowAppender(RowBlock<T> &block, int64_t row)
      : block_(block), row_(row), values_(block.values.data() + row * 3 * kRowListStride),
        offsets_(block.offsets.data() + row * 3 * kRowListStride) {}

  void add(T value, uint8_t code, int offset) {
    const int cls = code & 3;
    values_[n0_] = value;
    values_[kRowListStride + n1_] = value;
    values_[2 * kRowListStride + n2_] = value;
    const PanelOffset at = panel_offset<T>(offset);
    offsets_[n0_] = at;
    offsets_[kRowListStride + n1_] = at;
    offsets_[2 * kRowListStride + n2_] = at;
    n0_ += cls == kPositive;
    n1_ += cls == kNearZero;
    n2_ += cls == kNegative;
    flags_ |= code;
  }

  ~RowAppender() {
    int32_t *lengths = block_.lengths.data() + row_ * 3;
    lengths[0] = n0_;
    lengths[1] = n1_;
    lengths[2] = n2_;
    block_.infinite[size_t(row_)] = (flags_ & 4) != 0;
  }

private:
  RowBlock<T> &block_;
  int64_t row_;
  T *values_;
  PanelOffset *offsets_;
  int32_t n0_ = 0, n1_ = 0, n2_ = 0;
  uint8_t flags_ = 0;
};

}  // namespace conv_detail
}  // namespace nearzero
