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
  using namespace conv_detail;
  const int64_t out_positions = g.out_size[0] * g.out_size[1] * g.out_size[2];
  const int64_t in_per_group = g.in_channels / g.groups, out_per_group = g.out_channels / g.groups;
  const auto d_out_codes =
      class_codes(d_out, g.batch * g.out_channels * out_positions, d_out_threshold);
  const auto kernel_codes =
      class_codes(kernel, tap_count(g) * in_per_group * g.out_channels, kernel_threshold);
  const KernelStrides ks = kernel_strides(g);

  ChannelRowsProblem<T> p;
  p.batch = g.batch;
  p.groups = g.groups;
  p.a_values = d_out;
  p.a_codes = d_out_codes.get();
  p.a_strides = activation_strides(g.out_size, g.out_channels, g.channels_first);
  p.a_elements = g.batch * g.out_channels * out_positions;
  p.transposed = true;
  for (int d = 0; d < 3; ++d) {
    p.cell_size[d] = g.in_size[d];
    p.a_size[d] = g.out_size[d];
    p.stride[d] = g.stride[d];
    p.dilation[d] = g.dilation[d];
    p.pad_before[d] = g.pad_before[d];
    p.kernel_size[d] = g.kernel_size[d];
    p.b_tap_stride[d] = ks.spatial[d];
  }
  p.k_channels = out_per_group;
  p.rows = in_per_group;
  p.b_values = kernel;
  p.b_codes = kernel_codes.get();
  p.b_k_stride = ks.out_channel;
  p.b_row_stride = ks.in_channel;
  p.b_group_stride = out_per_group * ks.out_channel;
  p.out_strides = activation_strides(g.in_size, g.in_channels, g.channels_first);
  classify_channel_rows(p, out);
}

template void conv_backprop_input_classify_cpu<float>(const ConvGeometry &, const float *,
                                                      const float *, float, float,
                                                      const ClassifyOutput &);
template void conv_backprop_input_classify_cpu<double>(const ConvGeometry &, const double *,
                                                       const double *, double, double,
                                                       const ClassifyOutput &);

}  // namespace nearzero
