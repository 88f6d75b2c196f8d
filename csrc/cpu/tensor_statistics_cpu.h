// One pass over a tensor in place (any strides, float32/float64/float16/bfloat16) giving what
// the per-step history of a training run keeps: the squared L2 norm, the units (slices along one
// dimension) holding a non-zero value, and for weight gradients the finite values and those at
// most `tolerance` times the mean magnitude. Compiled once for the baseline instruction set.
#pragma once
#include <cstdint>
#include <vector>

namespace nearzero {

enum class StatisticsDtype : int { kFloat32 = 0, kFloat64 = 1, kFloat16 = 2, kBFloat16 = 3 };

struct StatisticsInput {
  const void *data;
  StatisticsDtype dtype;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // in elements, none negative
  int unit_dim;                  // -1: no units
};

struct TensorStatistics {
  double squared_norm = 0;
  int64_t units = 0;        // extent of the unit dimension (0 without one)
  int64_t units_alive = 0;  // units with a non-zero (or NaN) value
  int64_t finite = -1;      // finite values (-1: not counted)
  int64_t near_zero = -1;   // |x| <= tolerance * (sum of |x| over all-finite units) / size
};

// `tolerance` < 0: the norm and the units only. With `tolerance` >= 0 also `finite` and
// `near_zero`, whose mean magnitude is taken over the units (`unit_dim` slices, the whole tensor
// without one) whose values are all finite, divided by the tensor's size.
TensorStatistics tensor_statistics_cpu(const StatisticsInput &in, double tolerance);

}  // namespace nearzero
