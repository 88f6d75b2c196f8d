// Fused forward convolution classify: every output cell's nine counts and sums in one pass,
// as an implicit GEMM (rows = output positions, k = (tap, input channel), columns = output
// channels of the group). The padded border adds nothing: those taps are skipped.
#include "cpu/conv_activation_rows.h"
#include "cpu/conv_cpu.h"

namespace nearzero {

template <typename T>
void conv_classify_cpu(const ConvGeometry &g, const T *x, const T *kernel, T x_threshold,
                       T kernel_threshold, const ClassifyOutput &out) {
  using namespace conv_detail;
  const int64_t in_positions = g.in_size[0] * g.in_size[1] * g.in_size[2];
  const int64_t in_per_group = g.in_channels / g.groups, out_per_group = g.out_channels / g.groups;
  const auto x_codes = class_codes(x, g.batch * g.in_channels * in_positions, x_threshold);
  const auto kernel_codes =
      class_codes(kernel, tap_count(g) * in_per_group * g.out_channels, kernel_threshold);
  const KernelStrides ks = kernel_strides(g);

  ActivationRowsProblem<T> p;
  p.batch = g.batch;
  p.groups = g.groups;
  p.a_values = x;
  p.a_codes = x_codes.get();
  p.a_strides = activation_strides(g.in_size, g.in_channels, g.channels_first);
  p.transposed = false;
  for (int d = 0; d < 3; ++d) {
    p.row_size[d] = g.out_size[d];
    p.a_size[d] = g.in_size[d];
    p.stride[d] = g.stride[d];
    p.dilation[d] = g.dilation[d];
    p.pad_before[d] = g.pad_before[d];
    p.kernel_size[d] = g.kernel_size[d];
    p.b_tap_stride[d] = ks.spatial[d];
  }
  p.k_channels = in_per_group;
  p.columns = out_per_group;
  p.b_values = kernel;
  p.b_codes = kernel_codes.get();
  p.b_k_stride = ks.in_channel;
  p.b_column_stride = ks.out_channel;
  p.b_group_stride = out_per_group * ks.out_channel;
  p.out_strides = activation_strides(g.out_size, g.out_channels, g.channels_first);
  classify_activation_rows(p, out);
}

template void conv_classify_cpu<float>(const ConvGeometry &, const float *, const float *, float,
                                       float, const ClassifyOutput &);
template void conv_classify_cpu<double>(const ConvGeometry &, const double *, const double *,
                                        double, double, const ClassifyOutput &);

}  // namespace nearzero
