// Fused forward convolution classify: every output cell's nine counts and sums in one pass,
// as an implicit GEMM (lanes = output positions, k = (tap, input channel), rows = output
// channels of the group). Padding is no class: those lanes add nothing.
#include "cpu/conv_channel_rows.h"
#include "cpu/conv_cpu.h"

namespace nearzero {

template <typename T>
void conv_classify_cpu(const ConvGeometry &g, const T *x, const T *kernel, T x_threshold,
                       T kernel_threshold, const ClassifyOutput &out) {
  conv_detail::classify_activation_cells(g, x, kernel, x_threshold, kernel_threshold,
                                         /*transposed=*/false, out);
}

template void conv_classify_cpu<float>(const ConvGeometry &, const float *, const float *, float,
                                       float, const ClassifyOutput &);
template void conv_classify_cpu<double>(const ConvGeometry &, const double *, const double *,
                                        double, double, const ClassifyOutput &);

}  // namespace nearzero
