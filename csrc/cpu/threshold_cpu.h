// Exact order statistics of |x| for percentile thresholds (SPEC §2), CPU.
// Declared here, defined in threshold_cpu.cpp, bound in bindings/cpu_module.cpp.
#pragma once
#include <cstdint>

namespace nearzero {

template <typename T> struct AbsOrderStatistics {
  T low;              // sorted(|x|)[floor(idx)]
  T high;             // sorted(|x|)[ceil(idx)]
  int64_t count;      // number of non-NaN elements the ranks refer to
  int64_t nan_count;  // NaNs, which are left out of the selection
};

// Selects the two order statistics of |x| that the midpoint percentile needs, where
// idx = (count - 1) * fraction and ranks are clipped to [0, count - 1]. Linear time: a radix
// select over the bits of |x| (never a full sort). All-NaN input returns count == 0.
// Each of the n elements stands for `repeat` equal values (a broadcast input read once):
// count, nan_count and the ranks refer to all n * repeat values.
template <typename T>
AbsOrderStatistics<T> select_abs_order_statistics(const T *x, int64_t n, double fraction,
                                                  int64_t repeat = 1);

}  // namespace nearzero
