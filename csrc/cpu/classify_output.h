// Where a classify kernel puts its per-cell counts and sums: the full result, or a reduction
// over all cells ("all") or over everything but the channel ("channel"), with an optional mask.
// Included by every CPU kernel; every kernel MUST emit cells through CellWriter so that the
// reduce= and mask= modes behave the same for every op.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nearzero {

enum class ReduceMode : int { kNone = 0, kAll = 1, kChannel = 2 };

struct ClassifyOutput {
  ReduceMode mode = ReduceMode::kNone;
  int pairs = 9;               // 9 for two-input ops, 3 for tensor_classify
  void *counts = nullptr;      // kNone: int32/int64 per `counts_int64`; reductions: int64
  void *sums = nullptr;        // kNone: S (the kernel's sum type); reductions: double
  bool counts_int64 = false;
  int64_t cell_stride = 0;     // kNone: element strides of the full result
  int64_t pair_stride = 1;
  const uint8_t *mask = nullptr;  // one byte per cell (row-major value shape), or null
  int64_t channels = 1;           // kChannel: channel of a cell = (cell / channel_inner) % channels
  int64_t channel_inner = 1;
};

// Per-thread view of a ClassifyOutput. Reductions accumulate in int64/double privately and
// are added to the shared result under a lock-free merge at the end (`merge_into`).
template <typename S> class CellWriter {
public:
  explicit CellWriter(const ClassifyOutput &out) : out_(out) {
    if (out_.mode != ReduceMode::kNone) {
      const int64_t slots = (out_.mode == ReduceMode::kAll ? 1 : out_.channels) * out_.pairs;
      counts_.assign(static_cast<std::size_t>(slots), 0);
      sums_.assign(static_cast<std::size_t>(slots), 0.0);
    }
  }

  bool wanted(int64_t cell) const { return out_.mask == nullptr || out_.mask[cell] != 0; }

  // Emits one cell. Masked-out cells are written as zeros in the full result and skipped in
  // reductions.
  template <typename C, typename V> void emit(int64_t cell, const C *counts, const V *sums) {
    const bool keep = wanted(cell);
    if (out_.mode == ReduceMode::kNone) {
      const int64_t base = cell * out_.cell_stride;
      S *sum_out = static_cast<S *>(out_.sums);
      for (int p = 0; p < out_.pairs; ++p) {
        const int64_t at = base + p * out_.pair_stride;
        const int64_t c = keep ? int64_t(counts[p]) : 0;
        if (out_.counts_int64)
          static_cast<int64_t *>(out_.counts)[at] = c;
        else
          static_cast<int32_t *>(out_.counts)[at] = int32_t(c);
        sum_out[at] = keep ? S(sums[p]) : S(0);
      }
      return;
    }
    if (!keep) return;
    const int64_t slot =
        out_.mode == ReduceMode::kAll ? 0 : ((cell / out_.channel_inner) % out_.channels);
    int64_t *c = counts_.data() + slot * out_.pairs;
    double *s = sums_.data() + slot * out_.pairs;
    for (int p = 0; p < out_.pairs; ++p) {
      c[p] += int64_t(counts[p]);
      s[p] += double(sums[p]);
    }
  }

  // Adds this thread's reduction into the shared result. Call once per thread, serialised
  // (e.g. inside `#pragma omp critical`).
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
