// Fused input-gradient classify: the gradient of a convolution w.r.t. its input is the
// transposed convolution of d_out with the kernel. Lanes are input positions; a tap feeds one
// only where (row + pad - tap * dilation) is a whole multiple of the stride inside d_out, so
// strides and uneven padding are exact. Products d_out * kernel, first class from d_out.
#include "cpu/conv_channel_rows.h"
#include "cpu/conv_cpu.h"

namespace nearzero {

template <typename T>
void conv_backprop_input_classify_cpu(const ConvGeometry &g, const T *d_out, const T *kernel,
                                      T d_out_threshold, T kernel_threshold,
                                      const ClassifyOutput &out) {
  conv_detail::classify_activation_cells(g, d_out, kernel, d_out_threshold, kernel_threshold,
                                         /*transposed=*/true, out);
}

template void conv_backprop_input_classify_cpu<float>(const ConvGeometry &, const float *,
                                                      const float *, float, float,
                                                      const ClassifyOutput &);
template void conv_backprop_input_classify_cpu<double>(const ConvGeometry &, const double *,
                                                       const double *, double, double,
                                                       const ClassifyOutput &);

}  // namespace nearzero
