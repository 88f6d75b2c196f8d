// Exact order statistics of |x| for percentile thresholds (SPEC §2), CPU.
// Declared here, defined in threshold_cpu.cpp, bound in bindings/cpu_module.cpp.
#pragma once
#include "common/radix_select.h"

#include <cstdint>

namespace nearzero {

// Selects the two order statistics of |x| that the midpoint percentile needs, where
// idx = (count - 1) * fraction and ranks are clipped to [0, count - 1]. Linear time: a radix
// select over the bits of |x| (never a full sort; common/radix_select.h). All-NaN input returns
// count == 0. Each of the n elements stands for `repeat` equal values (a broadcast input read
// once): count, nan_count and the ranks refer to all n * repeat values.
template <typename T>
AbsOrderStatistics<T> select_abs_order_statistics(const T *x, int64_t n, double fraction,
                                                  int64_t repeat = 1);

}  // namespace nearzero
