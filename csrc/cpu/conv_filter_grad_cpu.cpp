// Fused kernel-gradient classify: dW[tap, ci, co] = sum over (batch, output position) of
// x[shifted by tap, ci] * d_out[co]. Rows are (tap, ci), columns output channels, and k the long
// batch x output-position axis, walked in blocks shared by every row of a tile; tasks split k
// when there are too few tiles to busy every thread. First class from x.
#include "cpu/parallel.h"
#include "cpu/conv_cpu.h"
#include "cpu/conv_emit.h"
#include "cpu/conv_filter_pack.h"
#include "cpu/conv_layout.h"
#include "cpu/conv_tile.h"

#include <algorithm>
#include <mutex>
#include <vector>

namespace nearzero {
namespace {
using namespace conv_detail;

// Rows per tile: every tile packs the d_out panels of its k blocks again, so tiles are large
// (a 3x3 kernel of 16 channels is one tile); the k split keeps the threads busy. Even with 64
// output channels, whose 640 cell blocks of accumulators (2 MB) overflow L2, this measured
// faster than tiles sized to L2 (86 against 96 ms per call at AVX-512).
constexpr int64_t kFilterRowTile = 160;
constexpr int64_t kMaxBlocksPerTask = 4;  // column blocks sharing one packing of the x rows
constexpr int64_t kBlocksPerCheck = 16;  // k blocks between interrupt checks

// One block of k = [k0, k0 + kn): d_out panels for the task's column blocks and x rows.
template <typename T>
void filter_block(const FilterProblem<T> &p, int64_t group, int64_t r0, int64_t rn,
                  int64_t cb_begin, int64_t cbs, int64_t k0, int64_t kn, FilterWorkspace<T> &ws) {
  constexpr int W = lanes<T>();
  const ConvGeometry &g = p.g;
  ws.x_base.resize(size_t(kn));
  ws.d_out_base.resize(size_t(kn));
  ws.position.resize(size_t(kn) * 3);
  for (int64_t i = 0; i < kn; ++i) {
    const int64_t k = k0 + i, n = k / p.out_positions;
    int64_t *o = ws.position.data() + i * 3;
    unflatten3(k % p.out_positions, g.out_size, o);
    ws.x_base[i] = n * p.xs.batch + group * p.in_per_group * p.xs.channel;
    ws.d_out_base[i] = n * p.ds.batch + o[0] * p.ds.spatial[0] + o[1] * p.ds.spatial[1] +
                       o[2] * p.ds.spatial[2] + group * p.out_per_group * p.ds.channel;
  }
  const int slots = pack_d_out_panels(p, cb_begin, cbs, kn, ws);
  ws.x_offset.resize(size_t(kn));
  const int64_t first_tap = r0 / p.in_per_group;
  const int64_t tile_taps = (r0 + rn - 1) / p.in_per_group - first_tap + 1;
  ws.tap_codes.resize(size_t(tile_taps * cbs * W));
  ws.tap_entries.resize(size_t(tile_taps));
  int64_t current_tap = -1;
  for (int64_t r = 0; r < rn; ++r) {
    const int64_t tap = (r0 + r) / p.in_per_group, ci = (r0 + r) % p.in_per_group;
    if (tap != current_tap) {  // where this tap reads x for every k of the block
      int64_t t[3];
      unflatten3(tap, g.kernel_size, t);
      for (int64_t i = 0; i < kn; ++i) {
        const int64_t *o = ws.position.data() + i * 3;
        int64_t at = ws.x_base[i];
        for (int d = 0; d < 3 && at != kOutsideInput; ++d) {
          const int64_t pos = o[d] * g.stride[d] - g.pad_before[d] + t[d] * g.dilation[d];
          at = (pos >= 0 && pos < g.in_size[d]) ? at + pos * p.xs.spatial[d] : kOutsideInput;
        }
        ws.x_offset[i] = at;
      }
      current_tap = tap;
      if (kWideRegisters) sum_tap_codes(ws, tap - first_tap, cbs, kn);
    }
    append_x_row(p, ci, kn, ws, r);
  }
  for (int64_t cb = 0; cb < cbs; ++cb) {
    const PanelEntry<T> *panel = ws.panel.data() + cb * kBlockK;
    for (int64_t r = 0; r < rn; ++r) {
      if (!kWideRegisters) {
        ws.acc.add_row(r * cbs + cb, row_view(ws.rows, r), panel, slots);
        continue;
      }
      const int64_t tap = (r0 + r) / p.in_per_group - first_tap;
      ws.acc.add_row(r * cbs + cb, row_view(ws.rows, r), panel, slots,
                     ws.tap_codes.data() + (tap * cbs + cb) * W, ws.tap_entries[size_t(tap)]);
    }
  }
}

// Emits a finished tile ([row][column block] cell blocks) into the result.
template <typename T>
void emit_filter_tile(const FilterProblem<T> &p, int64_t group, int64_t r0, int64_t rn,
                      int64_t cb_begin, int64_t cbs, const double *total, const int64_t *count,
                      CellWriter<T> &writer) {
  constexpr int W = lanes<T>();
  for (int64_t r = 0; r < rn; ++r) {
    const int64_t tap = (r0 + r) / p.in_per_group, ci = (r0 + r) % p.in_per_group;
    int64_t t[3];
    unflatten3(tap, p.g.kernel_size, t);
    const int64_t row_cell = t[0] * p.ks.spatial[0] + t[1] * p.ks.spatial[1] +
                             t[2] * p.ks.spatial[2] + ci * p.ks.in_channel;
    for (int64_t cb = 0; cb < cbs; ++cb) {
      const int64_t col0 = group * p.out_per_group + (cb_begin + cb) * W;
      const int jn = int(std::min<int64_t>(W, p.out_per_group - (cb_begin + cb) * W));
      for (int j = 0; j < jn; ++j)
        emit_cell(writer, total, count, W, r * cbs + cb, j,
                  row_cell + (col0 + j) * p.ks.out_channel);
    }
  }
}

}  // namespace

template <typename T>
void conv_backprop_filter_classify_cpu(const ConvGeometry &g, const T *x, const T *d_out,
                                       T x_threshold, T d_out_threshold,
                                       const ClassifyOutput &out) {
  constexpr int W = lanes<T>();
  const int64_t in_positions = g.in_size[0] * g.in_size[1] * g.in_size[2];
  const int64_t out_positions = g.out_size[0] * g.out_size[1] * g.out_size[2];
  const auto x_codes = class_codes(x, g.batch * g.in_channels * in_positions, x_threshold);
  const auto d_out_codes =
      class_codes(d_out, g.batch * g.out_channels * out_positions, d_out_threshold);
  const FilterProblem<T> p{g,
                           x,
                           d_out,
                           x_codes.get(),
                           d_out_codes.get(),
                           activation_strides(g.in_size, g.in_channels, g.channels_first),
                           activation_strides(g.out_size, g.out_channels, g.channels_first),
                           kernel_strides(g),
                           tap_count(g),
                           g.in_channels / g.groups,
                           g.out_channels / g.groups,
                           out_positions,
                           g.batch * out_positions};
  const int64_t rows = p.taps * p.in_per_group;
  const int64_t col_blocks = (p.out_per_group + W - 1) / W;
  if (rows == 0 || col_blocks == 0 || g.groups == 0) return;
  const int64_t cbs_per_task = std::min(col_blocks, kMaxBlocksPerTask);
  const int64_t cb_groups = (col_blocks + cbs_per_task - 1) / cbs_per_task;
  const int64_t tiles = (rows + kFilterRowTile - 1) / kFilterRowTile;
  const int64_t tile_rows = (rows + tiles - 1) / tiles;  // balanced tiles
  const int64_t base_tasks = g.groups * tiles * cb_groups;
  // Split k only when the kernel has too few tiles for the threads; then the split tasks add
  // their totals into a kernel-sized buffer (small, since the kernel is) before emission.
  const int64_t k_blocks = (p.k_total + kBlockK - 1) / kBlockK;
  const int64_t wanted = 4 * int64_t(max_threads());
  const int64_t splits = std::clamp<int64_t>((wanted + base_tasks - 1) / base_tasks, 1,
                                             std::max<int64_t>(1, k_blocks / 8));
  const size_t task_values = size_t(tile_rows * cbs_per_task * 9 * W);
  CellTotals merged;
  if (splits > 1) {
    resize_or_throw(merged.total, size_t(base_tasks) * task_values, "kernel-gradient sums");
    resize_or_throw(merged.count, size_t(base_tasks) * task_values, "kernel-gradient counts");
  }

  struct Thread {
    CellWriter<T> writer;
    FilterWorkspace<T> ws;
  };
  std::mutex merge_mutex;
  ParallelRun run;
  run.tasks(
      base_tasks * splits, [&] { return Thread{CellWriter<T>(out), {}}; },
      [&](Thread &thread, int64_t task) {
        FilterWorkspace<T> &ws = thread.ws;
        const int64_t base = task / splits, split = task % splits;
        const int64_t group = base / (tiles * cb_groups), rest = base % (tiles * cb_groups);
        const int64_t r0 = (rest / cb_groups) * tile_rows, rn = std::min(tile_rows, rows - r0);
        const int64_t cb_begin = (rest % cb_groups) * cbs_per_task;
        const int64_t cbs = std::min(col_blocks, cb_begin + cbs_per_task) - cb_begin;
        int64_t block_begin, block_end;
        chunk_range(k_blocks, splits, split, block_begin, block_end);
        ws.rows.resize(rn);
        ws.acc.reset(rn * cbs);
        for (int64_t b = block_begin; b < block_end; ++b) {
          if ((b - block_begin) % kBlocksPerCheck == 0) run.checkpoint();
          const int64_t k0 = b * kBlockK;
          filter_block(p, group, r0, rn, cb_begin, cbs, k0, std::min(kBlockK, p.k_total - k0), ws);
        }
        for (int64_t b = 0; b < rn * cbs; ++b) ws.acc.finish(b);
        if (splits == 1) {
          emit_filter_tile(p, group, r0, rn, cb_begin, cbs, ws.acc.totals(), ws.acc.counts(),
                           thread.writer);
          return;
        }
        const size_t used = size_t(rn * cbs * 9 * W);
        double *total = merged.total.data() + size_t(base) * task_values;
        int64_t *count = merged.count.data() + size_t(base) * task_values;
        std::lock_guard<std::mutex> lock(merge_mutex);
        for (size_t i = 0; i < used; ++i) {
          total[i] += ws.acc.totals()[i];
          count[i] += ws.acc.counts()[i];
        }
      },
      [&](Thread &thread) { thread.writer.merge_into(); });
  if (splits > 1) {
    run.tasks(
        base_tasks, [&] { return CellWriter<T>(out); },
        [&](CellWriter<T> &writer, int64_t base) {
          const int64_t group = base / (tiles * cb_groups), rest = base % (tiles * cb_groups);
          const int64_t r0 = (rest / cb_groups) * tile_rows, rn = std::min(tile_rows, rows - r0);
          const int64_t cb_begin = (rest % cb_groups) * cbs_per_task;
          const int64_t cbs = std::min(col_blocks, cb_begin + cbs_per_task) - cb_begin;
          emit_filter_tile(p, group, r0, rn, cb_begin, cbs,
                           merged.total.data() + size_t(base) * task_values,
                           merged.count.data() + size_t(base) * task_values, writer);
        },
        [&](CellWriter<T> &writer) { writer.merge_into(); });
  }
  run.finish();
}

template void conv_backprop_filter_classify_cpu<float>(const ConvGeometry &, const float *,
                                                       const float *, float, float,
                                                       const ClassifyOutput &);
template void conv_backprop_filter_classify_cpu<double>(const ConvGeometry &, const double *,
                                                        const double *, double, double,
                                                        const ClassifyOutput &);

}  // namespace nearzero
