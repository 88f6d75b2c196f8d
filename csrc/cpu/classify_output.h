// The CPU kernels' writer of classify results (the descriptor is common/result_descriptor.h):
// full results are stored through common/cell_store.h, reductions are summed per thread first.
// Included by every CPU kernel; every kernel MUST emit cells through CellWriter so that the
// reduce= and mask= modes behave the same for every op.
#pragma once
#include "common/cell_store.h"
#include "common/result_descriptor.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nearzero {

// Per-thread view of a ClassifyOutput. Reductions accumulate in int64/double privately and are
// added to the shared result ([slot][pair]) once per thread at the end (`merge_into`,
// serialised by the caller). Privately the totals are [slot][pair] too, except where
// consecutive cells are consecutive channels (reduce="channel" over the last axis): there they
// are [pair][slot], so that a run of cells adds to its channels as vectors.
template <typename S> class CellWriter {
public:
  explicit CellWriter(const ClassifyOutput &out) : out_(out) {
    if (out_.mode != ReduceMode::kNone) {
      slots_ = out_.mode == ReduceMode::kAll ? 1 : out_.channels;
      pair_major_ = out_.mode == ReduceMode::kChannel && out_.channel_inner == 1;
      counts_.assign(static_cast<std::size_t>(slots_ * out_.pairs), 0);
      sums_.assign(static_cast<std::size_t>(slots_ * out_.pairs), 0.0);
    }
  }

  bool wanted(int64_t cell) const { return cell_wanted(out_, cell); }

  // Emits one cell. Masked-out cells are written as zeros in the full result and skipped in
  // reductions.
  template <typename C, typename V> void emit(int64_t cell, const C *counts, const V *sums) {
    if (out_.mode == ReduceMode::kNone) {
      store_cell<S>(out_, cell, counts, sums);
      return;
    }
    if (!wanted(cell)) return;
    const int64_t slot = cell_slot(out_, cell);
    for (int p = 0; p < out_.pairs; ++p) {
      counts_[at(slot, p)] += int64_t(counts[p]);
      sums_[at(slot, p)] += double(sums[p]);
    }
  }

  // Emits `n` consecutive cells starting at `cell0`; counts and sums are pair-major:
  // counts[p * stride + j] is pair p of cell cell0 + j. The full, unmasked result is written
  // plane by plane (contiguous when pair-major); reductions add up each stretch of cells that
  // share a reduction slot first (all of them for reduce="all", a channel's for "channel") and
  // take one add per pair; the masked full result goes cell by cell through emit().
  template <typename C, typename V>
  void emit_run(int64_t cell0, int n, const C *counts, const V *sums, int stride) {
    if (out_.mode == ReduceMode::kNone && out_.mask == nullptr) {
      S *sum_out = static_cast<S *>(out_.sums);
      const int64_t cs = out_.cell_stride;
      for (int p = 0; p < out_.pairs; ++p) {
        const int64_t base = cell0 * cs + p * out_.pair_stride;
        const C *c = counts + p * stride;
        const V *v = sums + p * stride;
        if (out_.counts_int64) {
          int64_t *dst = static_cast<int64_t *>(out_.counts) + base;
          if (cs == 1)
            for (int j = 0; j < n; ++j) dst[j] = int64_t(c[j]);
          else
            for (int j = 0; j < n; ++j) dst[j * cs] = int64_t(c[j]);
        } else {
          int32_t *dst = static_cast<int32_t *>(out_.counts) + base;
          if (cs == 1)
            for (int j = 0; j < n; ++j) dst[j] = int32_t(c[j]);
          else
            for (int j = 0; j < n; ++j) dst[j * cs] = int32_t(c[j]);
        }
        S *dst = sum_out + base;
        if (cs == 1)
          for (int j = 0; j < n; ++j) dst[j] = S(v[j]);
        else
          for (int j = 0; j < n; ++j) dst[j * cs] = S(v[j]);
      }
      return;
    }
    if (pair_major_) {
      // Consecutive cells, consecutive channels: runs up to the last channel, each added to
      // its channels pair by pair.
      int64_t slot = cell0 % out_.channels;
      for (int j0 = 0; j0 < n;) {
        const int len = int(std::min<int64_t>(n - j0, out_.channels - slot));
        add_channels(slot, cell0 + j0, counts + j0, sums + j0, len, stride);
        j0 += len;
        slot = 0;
      }
      return;
    }
    if (out_.mode == ReduceMode::kChannel && out_.channel_inner < kShortStretch) {
      // Short stretches of one channel: cell by cell, the channel advanced as cells go.
      int64_t within = cell0 % out_.channel_inner;
      int64_t slot = (cell0 / out_.channel_inner) % out_.channels;
      for (int j = 0; j < n; ++j) {
        if (out_.mask == nullptr || out_.mask[cell0 + j] != 0)
          for (int p = 0; p < out_.pairs; ++p) {
            counts_[at(slot, p)] += int64_t(counts[p * stride + j]);
            sums_[at(slot, p)] += double(sums[p * stride + j]);
          }
        if (++within == out_.channel_inner) {
          within = 0;
          slot = slot + 1 == out_.channels ? 0 : slot + 1;
        }
      }
      return;
    }
    if (out_.mode != ReduceMode::kNone) {
      for (int j0 = 0; j0 < n;) {
        const int64_t cell = cell0 + j0;
        int len = n - j0;
        if (out_.mode == ReduceMode::kChannel)
          len = int(std::min<int64_t>(len, out_.channel_inner - cell % out_.channel_inner));
        add_stretch(cell_slot(out_, cell), cell, counts + j0, sums + j0, len, stride);
        j0 += len;
      }
      return;
    }
    C cell_counts[9];
    V cell_sums[9];
    for (int j = 0; j < n; ++j) {
      for (int p = 0; p < out_.pairs; ++p) {
        cell_counts[p] = counts[p * stride + j];
        cell_sums[p] = sums[p * stride + j];
      }
      emit(cell0 + j, cell_counts, cell_sums);
    }
  }

  // Adds this thread's reduction into the shared result. Call once per thread, serialised
  // (ParallelRun::tasks calls its `end` callback so).
  void merge_into() const {
    if (out_.mode == ReduceMode::kNone) return;
    int64_t *c = static_cast<int64_t *>(out_.counts);
    double *s = static_cast<double *>(out_.sums);
    for (int64_t slot = 0; slot < slots_; ++slot)
      for (int p = 0; p < out_.pairs; ++p) {
        c[slot * out_.pairs + p] += counts_[at(slot, p)];
        s[slot * out_.pairs + p] += sums_[at(slot, p)];
      }
  }

private:
  // Stretches of one reduction slot shorter than this are added cell by cell.
  static constexpr int64_t kShortStretch = 16;

  // Index of (slot, pair) in the private totals.
  std::size_t at(int64_t slot, int p) const {
    return std::size_t(pair_major_ ? p * slots_ + slot : slot * out_.pairs + p);
  }

  // Adds cells cell0 .. cell0 + n - 1 (pair-major, `stride` apart), all of reduction slot
  // `slot`, to that slot; masked-out cells add nothing.
  template <typename C, typename V>
  void add_stretch(int64_t slot, int64_t cell0, const C *counts, const V *sums, int n,
                   int stride) {
    for (int p = 0; p < out_.pairs; ++p) {
      int64_t run_count = 0;
      double run_sum = 0.0;
      if (out_.mask == nullptr) {
        // Vectorised: several partial sums, added up at the end (one chain of double adds would
        // take the adds' latency per cell and pair).
#pragma omp simd reduction(+ : run_count, run_sum)
        for (int j = 0; j < n; ++j) {
          run_count += int64_t(counts[p * stride + j]);
          run_sum += double(sums[p * stride + j]);
        }
      } else {
        for (int j = 0; j < n; ++j) {
          const bool keep = wanted(cell0 + j);
          run_count += keep ? int64_t(counts[p * stride + j]) : 0;
          run_sum += keep ? double(sums[p * stride + j]) : 0.0;
        }
      }
      counts_[at(slot, p)] += run_count;
      sums_[at(slot, p)] += run_sum;
    }
  }

  // Adds cells cell0 .. cell0 + n - 1 (pair-major, `stride` apart) to the reduction slots
  // slot0 .. slot0 + n - 1, one cell each; masked-out cells add nothing. Only where the
  // private totals are pair-major.
  template <typename C, typename V>
  void add_channels(int64_t slot0, int64_t cell0, const C *counts, const V *sums, int n,
                    int stride) {
    for (int p = 0; p < out_.pairs; ++p) {
      int64_t *slot_counts = counts_.data() + p * slots_ + slot0;
      double *slot_sums = sums_.data() + p * slots_ + slot0;
      const C *c = counts + p * stride;
      const V *v = sums + p * stride;
      if (out_.mask == nullptr) {
        for (int j = 0; j < n; ++j) {
          slot_counts[j] += int64_t(c[j]);
          slot_sums[j] += double(v[j]);
        }
      } else {
        const uint8_t *mask = out_.mask + cell0;
        for (int j = 0; j < n; ++j) {
          slot_counts[j] += mask[j] != 0 ? int64_t(c[j]) : 0;
          slot_sums[j] += mask[j] != 0 ? double(v[j]) : 0.0;
        }
      }
    }
  }

  const ClassifyOutput &out_;
  int64_t slots_ = 0;
  bool pair_major_ = false;
  std::vector<int64_t> counts_;  // reductions: [slot][pair], or [pair][slot] (pair_major_)
  std::vector<double> sums_;
};

}  // namespace nearzero
