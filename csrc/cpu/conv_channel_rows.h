// Driver for the two kernels whose cells are activation positions: the forward convolution
// (cells = output positions, A = x) and the input gradient (cells = input positions, A = d_out,
// the transposed convolution). Lanes run over lanes<T>() consecutive positions; each row is one
// cell channel, whose kernel slice is grouped by class once per task, and a tile's activation
// patches are packed per k block into class-slotted panels (vector loads where positions are
// contiguous). Included by conv_forward_cpu.cpp and conv_input_grad_cpu.cpp only.
#pragma once
#include "cpu/parallel.h"
#include "cpu/conv_emit.h"
#include "cpu/conv_layout.h"
#include "cpu/conv_panel.h"
#include "cpu/conv_tile.h"

#include <algorithm>
#include <type_traits>
#include <vector>

namespace nearzero {
namespace conv_detail {

// Kernel rows kept per task: bounded so the grouped slices stay cache-sized however large the
// kernel, and so a tile's accumulators (one cell block per row) stay in L2.
constexpr int64_t kMaxRowsPerTask = 64;
constexpr size_t kKernelRowBytes = size_t(1) << 20;

// The kernel rows of one task: each row's values of each k block compacted by class.
template <typename T> struct KernelRows {
  std::vector<T> values;          // [row][k]: per k block, P then Z then N
  std::vector<PanelOffset> offsets;  // panel entry of each value
  std::vector<int64_t> starts;    // [row][block][4]: list boundaries in values
  std::vector<uint8_t> infinite;  // [row][block]
  int64_t blocks = 0;

  RowView<T> view(int64_t row, int64_t block) const {
    RowView<T> v;
    const int64_t *s = starts.data() + (row * blocks + block) * 4;
    for (int a = 0; a < 3; ++a) {
      v.values[a] = values.data() + s[a];
      v.offsets[a] = offsets.data() + s[a];
      v.lengths[a] = int32_t(s[a + 1] - s[a]);
    }
    v.infinite = infinite[size_t(row * blocks + block)] != 0;
    return v;
  }
};

template <typename T>
void pack_kernel_rows(const ChannelRowsProblem<T> &p, const std::vector<KBlock> &blocks,
                      int64_t group, int64_t row_begin, int64_t row_end, KernelRows<T> &rows) {
  const int64_t taps = p.kernel_size[0] * p.kernel_size[1] * p.kernel_size[2];
  const int64_t k_total = taps * p.k_channels, rn = row_end - row_begin;
  const int64_t nb = int64_t(blocks.size());
  rows.blocks = nb;
  rows.values.resize(size_t(rn * k_total));
  rows.offsets.resize(size_t(rn * k_total));
  rows.starts.resize(size_t(rn * nb * 4));
  rows.infinite.resize(size_t(rn * nb));
  std::vector<int64_t> tap_offset(static_cast<size_t>(taps));
  for (int64_t tap = 0; tap < taps; ++tap) {
    int64_t t[3];
    unflatten3(tap, p.kernel_size, t);
    tap_offset[size_t(tap)] = t[0] * p.b_tap_stride[0] + t[1] * p.b_tap_stride[1] +
                              t[2] * p.b_tap_stride[2] + group * p.b_group_stride;
  }
  for (int64_t r = 0; r < rn; ++r) {
    const int64_t row_offset = (row_begin + r) * p.b_row_stride;
    for (int64_t b = 0; b < nb; ++b) {
      const KBlock &kb = blocks[size_t(b)];
      const int64_t width = kb.channel_end - kb.channel_begin;
      auto each = [&](auto &&visit) {
        for (int64_t tap = kb.tap_begin; tap < kb.tap_end; ++tap)
          for (int64_t c = kb.channel_begin; c < kb.channel_end; ++c)
            visit(tap_offset[size_t(tap)] + c * p.b_k_stride + row_offset,
                  (tap - kb.tap_begin) * width + (c - kb.channel_begin));
      };
      int64_t sizes[4] = {0, 0, 0, 0};
      uint8_t flags = 0;
      each([&](int64_t at, int64_t) {
        ++sizes[p.b_codes[at] & 3];
        flags |= p.b_codes[at];
      });
      int64_t *s = rows.starts.data() + (r * nb + b) * 4;
      s[0] = r * k_total + kb.k_begin;
      for (int a = 0; a < 3; ++a) s[a + 1] = s[a] + sizes[a];
      int64_t fill[3] = {s[0], s[1], s[2]};
      each([&](int64_t at, int64_t offset) {
        const int cls = p.b_codes[at] & 3;
        if (cls == kNoClass) return;
        rows.values[size_t(fill[cls])] = p.b_values[at];
        rows.offsets[size_t(fill[cls]++)] = panel_offset<T>(offset);
      });
      rows.infinite[size_t(r * nb + b)] = (flags & kInfiniteBit) != 0;
    }
  }
}

template <typename T> struct ChannelWorkspace {
  KernelRows<T> rows;
  int64_t rows_group = -1, rows_begin = -1;
  AlignedVector<PanelEntry<T>> panel;
  std::vector<int64_t> lane_cells;
  LaneTile tile;
  TileAccumulators<T> acc;
  CellTotals scratch;
  RowTotals row_totals;  // reductions: the current task's rows (rows_by_task)
};

// Whether a reduction adds up each row's lanes across the tiles of a task (RowTotals): float
// tiles at the AVX-512 level, every cell of a row reduced into one slot (no mask).
template <typename T> bool rows_by_task(const ClassifyOutput &out) {
#if defined(__AVX512F__)
  return std::is_same_v<T, float> && out.mode != ReduceMode::kNone && out.mask == nullptr;
#else
  (void)out;
  return false;
#endif
}

// One tile of positions against the rows [row_begin, row_end) of one group.
template <typename T>
void channel_row_tile(const ChannelRowsProblem<T> &p, const std::vector<KBlock> &blocks,
                      int64_t group, int64_t row_begin, int64_t row_end, int64_t tile_index,
                      ChannelWorkspace<T> &ws, CellWriter<T> &writer, const ClassifyOutput &out) {
  constexpr int W = lanes<T>();
  const int64_t rn = row_end - row_begin;
  LaneTile &tile = ws.tile;
  make_lane_tile(p, tile_index, tile);
  ws.acc.reset(rn);
  ws.panel.resize(size_t(kPanelBlockK));
  ws.lane_cells.resize(size_t(W));
  const int64_t first_cell =
      tile.n * p.out_strides.batch + (group * p.rows + row_begin) * p.out_strides.channel;
  for (int l = 0; l < tile.lanes; ++l)
    ws.lane_cells[size_t(l)] = first_cell + tile.coords[l][0] * p.out_strides.spatial[0] +
                               tile.coords[l][1] * p.out_strides.spatial[1] +
                               tile.coords[l][2] * p.out_strides.spatial[2];
  // Rows written as they finish (each right after its last block), or the tile at the end.
  const bool row_runs = !blocks.empty() && writes_row_runs(out, tile.lanes, W,
                                                           ws.lane_cells.data(),
                                                           p.out_strides.channel);
  for (size_t b = 0; b < blocks.size(); ++b) {
    const KBlock &kb = blocks[b];
    const int slots = pack_activation_panel(p, kb, group, tile, ws.panel.data());
    // The panel's count codes summed over its entries (fields of at most kPanelBlockK each),
    // for the derived counts of the levels that use them.
    const int32_t entries =
        int32_t((kb.tap_end - kb.tap_begin) * (kb.channel_end - kb.channel_begin));
    int32_t panel_codes[W] = {};
    if (kWideRegisters)
      for (int32_t e = 0; e < entries; ++e) {
#pragma omp simd
        for (int j = 0; j < W; ++j) panel_codes[j] += ws.panel[size_t(e)].codes[j];
      }
    const bool last = b + 1 == blocks.size();
    for (int64_t r = 0; r < rn; ++r) {
      ws.acc.add_row(r, ws.rows.view(r, int64_t(b)), ws.panel.data(), slots,
                     kWideRegisters ? panel_codes : nullptr, entries);
      if (last && row_runs) {
        ws.acc.close(r);
        emit_row_runs<T, T>(out, ws.acc, r, ws.lane_cells[0], p.out_strides.channel,
                            /*rows_hold_second=*/true);
      }
    }
  }
  if (row_runs) return;
  for (int64_t r = 0; r < rn; ++r) ws.acc.close(r);
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (tile.lanes == W && rows_by_task<T>(out)) {
      for (int64_t r = 0; r < rn; ++r) {
        for (int p = 0; p < 9; ++p) {
          const int q = accumulated_pair(p, /*rows_hold_second=*/true);
          ws.acc.add_lane_pairs(r, q / 3, q % 3, ws.row_totals.row_counts(r, p),
                                ws.row_totals.row_sums(r, p));
        }
        ws.row_totals.cells[size_t(r)] = ws.lane_cells[0] + r * p.out_strides.channel;
      }
      return;
    }
  }
#endif
  emit_tile(writer, out, ws.acc, rn, tile.lanes, ws.lane_cells.data(), p.out_strides.channel,
            /*rows_hold_second=*/true, ws.scratch);
}

template <typename T>
void classify_channel_rows(const ChannelRowsProblem<T> &p, const ClassifyOutput &out) {
  constexpr int W = lanes<T>();
  const int64_t positions = p.cell_size[0] * p.cell_size[1] * p.cell_size[2];
  if (p.batch == 0 || positions == 0 || p.rows == 0 || p.groups == 0) return;
  const int64_t taps = p.kernel_size[0] * p.kernel_size[1] * p.kernel_size[2];
  const std::vector<KBlock> blocks = tap_channel_blocks(taps, p.k_channels);
  const int64_t k_total = std::max<int64_t>(1, taps * p.k_channels);
  const int64_t rows_per_task = std::clamp<int64_t>(
      int64_t(kKernelRowBytes / ((sizeof(T) + sizeof(PanelOffset)) * size_t(k_total))), 1,
      std::min(kMaxRowsPerTask, p.rows));
  const int64_t row_groups = (p.rows + rows_per_task - 1) / rows_per_task;
  const int64_t tiles = p.batch * ((positions + W - 1) / W);
  // Many small tasks: the last ones end the run about together on a machine shared with other
  // jobs (a task is tiles of a few milliseconds; the kernel rows a task packs are few).
  const int64_t wanted = 16 * int64_t(max_threads());
  const int64_t chunks = std::clamp<int64_t>(
      (wanted + p.groups * row_groups - 1) / (p.groups * row_groups), 1, tiles);
  const int64_t tasks = p.groups * row_groups * chunks;

  struct Thread {
    CellWriter<T> writer;
    ChannelWorkspace<T> ws;
  };
  ParallelRun run;
  run.tasks(
      tasks, [&] { return Thread{CellWriter<T>(out), {}}; },
      [&](Thread &thread, int64_t task) {
        ChannelWorkspace<T> &ws = thread.ws;
        const int64_t chunk = task % chunks, rest = task / chunks;
        const int64_t group = rest / row_groups, row_begin = (rest % row_groups) * rows_per_task;
        const int64_t row_end = std::min(p.rows, row_begin + rows_per_task);
        if (ws.rows_group != group || ws.rows_begin != row_begin) {
          ws.rows_group = -1;  // stale until packed (an exception may leave it half done)
          pack_kernel_rows(p, blocks, group, row_begin, row_end, ws.rows);
          ws.rows_group = group;
          ws.rows_begin = row_begin;
        }
        int64_t tile_begin, tile_end;
        chunk_range(tiles, chunks, chunk, tile_begin, tile_end);
        if (rows_by_task<T>(out)) ws.row_totals.reset(row_end - row_begin);
        for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
          run.checkpoint();
          channel_row_tile(p, blocks, group, row_begin, row_end, tile, ws, thread.writer, out);
        }
        if (rows_by_task<T>(out)) ws.row_totals.emit_into(thread.writer);
        finish_stores();
      },
      [&](Thread &thread) { thread.writer.merge_into(); });
  run.finish();
}

// A convolution whose cells are activation positions: the forward op (`transposed` false: A = x,
// cells = output positions, rows = output channels) or the input gradient (true: A = d_out,
// cells = input positions, rows = input channels, the transposed convolution). Products are
// A * kernel, first class from A.
template <typename T>
void classify_activation_cells(const ConvGeometry &g, const T *a, const T *kernel, T a_threshold,
                               T kernel_threshold, bool transposed, const ClassifyOutput &out) {
  const int64_t *a_size = transposed ? g.out_size : g.in_size;
  const int64_t *cell_size = transposed ? g.in_size : g.out_size;
  const int64_t a_channels = transposed ? g.out_channels : g.in_channels;
  const int64_t cell_channels = transposed ? g.in_channels : g.out_channels;
  const int64_t in_per_group = g.in_channels / g.groups, out_per_group = g.out_channels / g.groups;
  const int64_t a_elements = g.batch * a_channels * a_size[0] * a_size[1] * a_size[2];
  const auto a_codes = class_codes(a, a_elements, a_threshold);
  const auto kernel_codes =
      class_codes(kernel, tap_count(g) * in_per_group * g.out_channels, kernel_threshold);
  const KernelStrides ks = kernel_strides(g);

  ChannelRowsProblem<T> p;
  p.batch = g.batch;
  p.groups = g.groups;
  p.a_values = a;
  p.a_codes = a_codes.get();
  p.a_strides = activation_strides(a_size, a_channels, g.channels_first);
  p.a_elements = a_elements;
  p.transposed = transposed;
  for (int d = 0; d < 3; ++d) {
    p.cell_size[d] = cell_size[d];
    p.a_size[d] = a_size[d];
    p.stride[d] = g.stride[d];
    p.dilation[d] = g.dilation[d];
    p.pad_before[d] = g.pad_before[d];
    p.kernel_size[d] = g.kernel_size[d];
    p.b_tap_stride[d] = ks.spatial[d];
  }
  p.k_channels = transposed ? out_per_group : in_per_group;
  p.rows = transposed ? in_per_group : out_per_group;
  p.b_values = kernel;
  p.b_codes = kernel_codes.get();
  p.b_k_stride = transposed ? ks.out_channel : ks.in_channel;
  p.b_row_stride = transposed ? ks.in_channel : ks.out_channel;
  p.b_group_stride = out_per_group * ks.out_channel;
  p.out_strides = activation_strides(cell_size, cell_channels, g.channels_first);
  classify_channel_rows(p, out);
}

}  // namespace conv_detail
}  // namespace nearzero
