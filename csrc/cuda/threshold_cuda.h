// Exact order statistics of |x| on the GPU for percentile thresholds (SPEC §2): the CUDA twin of
// cpu/threshold_cpu.h, the same radix select (common/radix_select.h) returning the same
// AbsOrderStatistics. Defined in threshold_cuda.cu.
#pragma once
#include "common/radix_select.h"

#include <cstdint>

namespace nearzero {

// int64 entries of device workspace select_abs_order_statistics_cuda needs.
constexpr int64_t kThresholdWorkspaceSize = radix::kBins + 8;

// Radix select over the bits of |x| (11-bit digits, histograms in shared memory, then global
// atomics; the host walks the levels). Once the wanted bucket fits in `scratch` (capacity in
// elements, may be 0) it is copied there so later levels read only the bucket. x: n contiguous
// values on the current device; waits for the result on `stream`.
template <typename T>
AbsOrderStatistics<T> select_abs_order_statistics_cuda(const T *x, int64_t n, double fraction,
                                                       T *scratch, int64_t scratch_capacity,
                                                       int64_t *workspace, void *stream);

}  // namespace nearzero
