// Fused forward convolution classify: every output cell's nine counts and sums in one pass,
// as an implicit GEMM (lanes = output positions, k = (tap, input channel), rows = output
// channels of the group). Padding is no class: those lanes add nothing.
#include "cpu/conv_channel_rows.h"
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

  ChannelRowsProblem<T> p;
  p.batch = g.batch;
  p.groups = g.groups;
  p.a_values = x;
  p.a_codes = x_codes.get();
  p.a_strides = activation_strides(g.in_size, g.in_channels, g.channels_first);
  p.a_elements = g.batch * g.in_channels * in_positions;
  p.transposed = false;
  for (int d = 0; d < 3; ++d) {
    p.cell_size[d] = g.out_size[d];
    p.a_size[d] = g.in_size[d];
    p.stride[d] = g.stride[d];
    p.dilation[d] = g.dilation[d];
    p.pad_before[d] = g.pad_before[d];
    p.kernel_size[d] = g.kernel_size[d];
    p.b_tap_stride[d] = ks.spatial[d];
  }
  p.k_channels = in_per_group;
  p.rows = out_per_group;
  p.b_values = kernel;
  p.b_codes = kernel_codes.get();
  p.b_k_stride = ks.in_channel;
  p.b_row_stride = ks.out_channel;
  p.b_group_stride = out_per_group * ks.out_channel;
  p.out_strides = activation_strides(g.out_size, g.out_channels, g.channels_first);
  classify_channel_rows(p, out);
}

template void conv_classify_cpu<float>(const ConvGeometry &, const float *, const float *, float,
                                       float, const ClassifyOutput &);
template void conv_classify_cpu<double>(const ConvGeometry &, const double *, const double *,
                                        double, double, const ClassifyOutput &);

}  // namespace nearzero
