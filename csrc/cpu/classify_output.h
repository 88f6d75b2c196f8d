// The CPU kernels' writer of classify results (the descriptor is common/result_descriptor.h):
// full results are stored through common/cell_store.h, reductions are summed per thread first.
// Included by every CPU kernel; every kernel MUST emit cells through CellWriter so that the
// reduce= and mask= modes behave the same for every op.
#pragma once
#include "common/cell_store.h"
#include "common/result_descriptor.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace nearzero {

// Per-thread view of a ClassifyOutput. Reductions accumulate in int64/double privately and
// are added to the shared result once per thread at the end (`merge_into`, serialised by the
// caller).
template <typename S> class CellWriter {
public:
  explicit CellWriter(const ClassifyOutput &out) : out_(out) {
    if (out_.mode != ReduceMode::kNone) {
      const int64_t slots = (out_.mode == ReduceMode::kAll ? 1 : out_.channels) * out_.pairs;
      counts_.assign(static_cast<std::size_t>(slots), 0);
      sums_.assign(static_cast<std::size_t>(slots), 0.0);
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
    int64_t *c = counts_.data() + slot * out_.pairs;
    double *s = sums_.data() + slot * out_.pairs;
    for (int p = 0; p < out_.pairs; ++p) {
      c[p] += int64_t(counts[p]);
      s[p] += double(sums[p]);
    }
  }

  // Emits `n` consecutive cells starting at `cell0`; counts and sums are pair-major:
  // counts[p * stride + j] is pair p of cell cell0 + j. The full, unmasked result is written
  // plane by plane (contiguous when pair-major), a reduction over all cells is summed over the
  // run first, everything else goes through emit().
  template <typename C, typename V>
  void emit_run(int64_t cell0, int n, const C *counts, const V *sums, int stride) {
    if (out_.mode == ReduceMode::kNone && out_.mask == nullptr) {
      S *sum_out = static_cast<S *>(out_.sums);
      for (int p = 0; p < out_.pairs; ++p) {
        const int64_t base = cell0 * out_.cell_stride + p * out_.pair_stride;
        const C *c = counts + p * stride;
        const V *v = sums + p * stride;
        if (out_.counts_int64) {
          int64_t *dst = static_cast<int64_t *>(out_.counts) + base;
          for (int j = 0; j < n; ++j) dst[j * out_.cell_stride] = int64_t(c[j]);
        } else {
          int32_t *dst = static_cast<int32_t *>(out_.counts) + base;
          for (int j = 0; j < n; ++j) dst[j * out_.cell_stride] = int32_t(c[j]);
        }
        S *dst = sum_out + base;
        for (int j = 0; j < n; ++j) dst[j * out_.cell_stride] = S(v[j]);
      }
      return;
    }
    if (out_.mode == ReduceMode::kAll) {  // the run's totals first: one add per pair
      for (int p = 0; p < out_.pairs; ++p) {
        int64_t run_count = 0;
        double run_sum = 0.0;
        for (int j = 0; j < n; ++j) {
          const bool keep = wanted(cell0 + j);
          run_count += keep ? int64_t(counts[p * stride + j]) : 0;
          run_sum += keep ? double(sums[p * stride + j]) : 0.0;
        }
        counts_[std::size_t(p)] += run_count;
        sums_[std::size_t(p)] += run_sum;
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
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      c[i] += counts_[i];
      s[i] += sums_[i];
    }
  }

private:
  const ClassifyOutput &out_;
  std::vector<int64_t> counts_;
  std::vector<double> sums_;
};

}  // namespace nearzero
