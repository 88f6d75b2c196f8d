// Driver for the two kernels whose cells are activation positions: the forward convolution
// (rows = output positions, A = x) and the input gradient (rows = input positions, A = d_out,
// the transposed convolution). B is the kernel, packed once per task into class-slotted panels.
// Included by conv_forward_cpu.cpp and conv_input_grad_cpu.cpp only.
#pragma once
#include "common/parallel.h"
#include "cpu/conv_layout.h"
#include "cpu/conv_tile.h"

#include <algorithm>
#include <vector>

namespace nearzero {
namespace conv_detail {

// k runs over (tap, channel of A within the group) as k = tap * k_channels + channel. A block
// is a run of whole taps, or a chunk of one tap's channels when a tap alone exceeds kBlockK.
struct KBlock {
  int64_t tap_begin, tap_end, channel_begin, channel_end, k_begin;
};

inline std::vector<KBlock> tap_channel_blocks(int64_t taps, int64_t channels) {
  std::vector<KBlock> blocks;
  if (channels == 0) return blocks;
  if (channels <= kBlockK) {
    const int64_t per_block = kBlockK / channels;
    for (int64_t t = 0; t < taps; t += per_block)
      blocks.push_back({t, std::min(taps, t + per_block), 0, channels, t * channels});
    return blocks;
  }
  for (int64_t t = 0; t < taps; ++t)
    for (int64_t c = 0; c < channels; c += kBlockK)
      blocks.push_back({t, t + 1, c, std::min(channels, c + kBlockK), t * channels + c});
  return blocks;
}

template <typename T> struct ActivationRowsProblem {
  int64_t batch = 0, groups = 1;
  int64_t row_size[3];            // spatial size of the rows (the cells' activation)
  const T *a_values;              // A: gathered per row and tap
  const uint8_t *a_codes;
  ActivationStrides a_strides;
  int64_t a_size[3];
  // false: A position = row * stride - pad + tap * dilation (forward);
  // true: A position * stride = row + pad - tap * dilation (input gradient).
  bool transposed = false;
  int64_t stride[3], dilation[3], pad_before[3], kernel_size[3];
  int64_t k_channels = 0;         // channels of A per group
  int64_t columns = 0;            // columns (cell channels) per group
  // B(tap, k channel, column) of group g is at
  //   sum(tap_d * b_tap_stride[d]) + kc * b_k_stride + j * b_column_stride + g * b_group_stride
  const T *b_values;
  const uint8_t *b_codes;
  int64_t b_tap_stride[3], b_k_stride, b_column_stride, b_group_stride;
  ActivationStrides out_strides;  // cell of (n, row position, g * columns + j)
};

constexpr int64_t kRowTile = 32;
constexpr int64_t kNoTap = -1;
constexpr size_t kPanelBytesPerTask = size_t(2) << 20;

// Element offset of A for every tap of one row (kNoTap where the tap falls into padding or,
// transposed, between strides), plus the row's cell offset.
template <typename T>
void row_tap_offsets(const ActivationRowsProblem<T> &p, int64_t row, int64_t group,
                     std::vector<int64_t> (&parts)[3], int64_t *table, int64_t &cell) {
  const int64_t positions = p.row_size[0] * p.row_size[1] * p.row_size[2];
  const int64_t n = row / positions;
  int64_t pos[3];
  unflatten3(row % positions, p.row_size, pos);
  cell = n * p.out_strides.batch;
  for (int d = 0; d < 3; ++d) {
    cell += pos[d] * p.out_strides.spatial[d];
    parts[d].resize(size_t(p.kernel_size[d]));
    for (int64_t t = 0; t < p.kernel_size[d]; ++t) {
      int64_t at = kNoTap;
      if (!p.transposed) {
        const int64_t i = pos[d] * p.stride[d] - p.pad_before[d] + t * p.dilation[d];
        if (i >= 0 && i < p.a_size[d]) at = i * p.a_strides.spatial[d];
      } else {
        const int64_t num = pos[d] + p.pad_before[d] - t * p.dilation[d];
        if (num >= 0 && num % p.stride[d] == 0 && num / p.stride[d] < p.a_size[d])
          at = (num / p.stride[d]) * p.a_strides.spatial[d];
      }
      parts[d][size_t(t)] = at;
    }
  }
  const int64_t base = n * p.a_strides.batch + group * p.k_channels * p.a_strides.channel;
  int64_t tap = 0;
  for (int64_t t0 = 0; t0 < p.kernel_size[0]; ++t0)
    for (int64_t t1 = 0; t1 < p.kernel_size[1]; ++t1)
      for (int64_t t2 = 0; t2 < p.kernel_size[2]; ++t2, ++tap) {
        const int64_t a = parts[0][size_t(t0)], b = parts[1][size_t(t1)], c = parts[2][size_t(t2)];
        table[tap] = (a == kNoTap || b == kNoTap || c == kNoTap) ? kNoTap : base + a + b + c;
      }
}

// Panels of the column blocks [cb_begin, cb_end) of one group over all k: [block][k].
template <typename T>
void pack_kernel_panels(const ActivationRowsProblem<T> &p, int64_t group, int64_t cb_begin,
                        int64_t cb_end, int64_t taps, std::vector<PanelEntry<T>> &panel) {
  constexpr int W = lanes<T>();
  const int64_t k_total = taps * p.k_channels;
  panel.assign(size_t((cb_end - cb_begin) * k_total), PanelEntry<T>{});
  for (int64_t cb = cb_begin; cb < cb_end; ++cb) {
    PanelEntry<T> *entries = panel.data() + (cb - cb_begin) * k_total;
    const int jn = int(std::min<int64_t>(W, p.columns - cb * W));
    for (int64_t tap = 0; tap < taps; ++tap) {
      int64_t t[3];
      unflatten3(tap, p.kernel_size, t);
      const int64_t tap_offset = t[0] * p.b_tap_stride[0] + t[1] * p.b_tap_stride[1] +
                                 t[2] * p.b_tap_stride[2] + group * p.b_group_stride;
      for (int64_t kc = 0; kc < p.k_channels; ++kc) {
        PanelEntry<T> &e = entries[tap * p.k_channels + kc];
        for (int j = 0; j < jn; ++j) {
          const int64_t at = tap_offset + kc * p.b_k_stride + (cb * W + j) * p.b_column_stride;
          put_panel_value(e, j, p.b_values[at], p.b_codes[at]);
        }
      }
    }
  }
}

template <typename T> struct ActivationWorkspace {
  std::vector<PanelEntry<T>> panel;
  int64_t panel_group = -1, panel_cb = -1;
  std::vector<int64_t> parts[3];
  std::vector<int64_t> tap_table;  // [row][tap]
  std::vector<int64_t> row_cell;
  RowBlock<T> rows;
  TileAccumulators<T> acc;
};

// One tile of rows against the column blocks [cb_begin, cb_end) of one group.
template <typename T>
void activation_row_tile(const ActivationRowsProblem<T> &p, const std::vector<KBlock> &blocks,
                         int64_t taps, int64_t group, int64_t cb_begin, int64_t cb_end,
                         int64_t r0, int64_t rn, ActivationWorkspace<T> &ws,
                         CellWriter<T> &writer) {
  constexpr int W = lanes<T>();
  const int64_t cbs = cb_end - cb_begin, k_total = taps * p.k_channels;
  ws.tap_table.resize(size_t(rn * taps));
  ws.row_cell.resize(size_t(rn));
  for (int64_t r = 0; r < rn; ++r)
    row_tap_offsets(p, r0 + r, group, ws.parts, ws.tap_table.data() + r * taps, ws.row_cell[r]);
  ws.rows.resize(rn);
  ws.acc.reset(rn * cbs);
  const int64_t channel_stride = p.a_strides.channel;
  for (const KBlock &kb : blocks) {
    const int64_t width = kb.channel_end - kb.channel_begin;
    for (int64_t r = 0; r < rn; ++r) {
      RowAppender<T> row(ws.rows, r);
      const int64_t *table = ws.tap_table.data() + r * taps;
      for (int64_t tap = kb.tap_begin; tap < kb.tap_end; ++tap) {
        if (table[tap] == kNoTap) continue;
        const int64_t offset0 = (tap - kb.tap_begin) * width - kb.channel_begin;
        for (int64_t c = kb.channel_begin; c < kb.channel_end; ++c) {
          const int64_t at = table[tap] + c * channel_stride;
          row.add(p.a_values[at], p.a_codes[at], int(offset0 + c));
        }
      }
    }
    for (int64_t cb = 0; cb < cbs; ++cb) {
      const PanelEntry<T> *panel = ws.panel.data() + cb * k_total + kb.k_begin;
      for (int64_t r = 0; r < rn; ++r) ws.acc.add_row(r * cbs + cb, ws.rows, r, panel);
    }
  }
  for (int64_t b = 0; b < rn * cbs; ++b) ws.acc.finish(b);
  const int64_t col_step = p.out_strides.channel;
  const double *total = ws.acc.totals();
  const int64_t *count = ws.acc.counts();
  for (int64_t cb = 0; cb < cbs; ++cb) {
    const int64_t col0 = group * p.columns + (cb_begin + cb) * W;
    const int jn = int(std::min<int64_t>(W, p.columns - (cb_begin + cb) * W));
    // Visit cells in memory order of the result: columns innermost when they are adjacent.
    if (col_step == 1) {
      for (int64_t r = 0; r < rn; ++r)
        for (int j = 0; j < jn; ++j)
          emit_cell(writer, total, count, W, r * cbs + cb, j, ws.row_cell[r] + col0 + j);
    } else {
      for (int j = 0; j < jn; ++j)
        for (int64_t r = 0; r < rn; ++r)
          emit_cell(writer, total, count, W, r * cbs + cb, j, ws.row_cell[r] + (col0 + j) * col_step);
    }
  }
}

template <typename T>
void classify_activation_rows(const ActivationRowsProblem<T> &p, const ClassifyOutput &out) {
  constexpr int W = lanes<T>();
  const int64_t rows = p.batch * p.row_size[0] * p.row_size[1] * p.row_size[2];
  const int64_t col_blocks = (p.columns + W - 1) / W;
  if (rows == 0 || col_blocks == 0 || p.groups == 0) return;
  const int64_t taps = p.kernel_size[0] * p.kernel_size[1] * p.kernel_size[2];
  const std::vector<KBlock> blocks = tap_channel_blocks(taps, p.k_channels);
  // Column blocks per task: as many as keep the task's packed kernel panel near 2 MiB, so
  // packed rows are reused across columns without the panel leaving the cache.
  const int64_t entries = std::max<int64_t>(1, taps * p.k_channels);
  const int64_t cbs_per_task = std::clamp<int64_t>(
      int64_t(kPanelBytesPerTask / (sizeof(PanelEntry<T>) * size_t(entries))), 1, col_blocks);
  const int64_t cb_groups = (col_blocks + cbs_per_task - 1) / cbs_per_task;
  const int64_t tiles = (rows + kRowTile - 1) / kRowTile;
  const int64_t wanted = 4 * int64_t(max_threads());
  const int64_t chunks =
      std::clamp<int64_t>((wanted + p.groups * cb_groups - 1) / (p.groups * cb_groups), 1, tiles);
  const int64_t tasks = p.groups * cb_groups * chunks;

#pragma omp parallel
  {
    CellWriter<T> writer(out);
    ActivationWorkspace<T> ws;
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t chunk = task % chunks, rest = task / chunks;
      const int64_t group = rest / cb_groups, cb_begin = (rest % cb_groups) * cbs_per_task;
      const int64_t cb_end = std::min(col_blocks, cb_begin + cbs_per_task);
      if (ws.panel_group != group || ws.panel_cb != cb_begin) {
        pack_kernel_panels(p, group, cb_begin, cb_end, taps, ws.panel);
        ws.panel_group = group;
        ws.panel_cb = cb_begin;
      }
      int64_t tile_begin, tile_end;
      chunk_range(tiles, int(chunks), int(chunk), tile_begin, tile_end);
      for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
        const int64_t r0 = tile * kRowTile, rn = std::min(kRowTile, rows - r0);
        activation_row_tile(p, blocks, taps, group, cb_begin, cb_end, r0, rn, ws, writer);
      }
    }
#pragma omp critical(nearzero_merge)
    writer.merge_into();
  }
}

}  // namespace conv_detail
}  // namespace nearzero
