// The forward convolution as a gather GEMM for the tiled kernel (tiled_classify_cuda.cuh), one
// GEMM per group: rows (batch, output position), columns the output channels of the group, k
// (input channel, tap). Padded input positions load as "no class", so they add nothing, as
// SPEC §3 asks.
#include "cuda/conv_gather_cuda.cuh"

namespace nearzero {

template <typename T> struct ConvGatherOf<ConvForward, T> : tiled::Operands<T>, ConvIndexing {
  void set_shape(const ConvGeometry &g) {
    this->n = g.batch * out_positions;
    this->k = in_group * taps;
    this->m = out_group;
    this->x_along_k = !channels_first;  // channels_last: in channels (fastest in k) contiguous
    this->y_along_k = channels_first;
  }

  __device__ tiled::Row row(int64_t group, int64_t i) const {
    tiled::Row r{};
    int64_t b, p, position[3];
    batch_position(i, out_positions, out_size, b, p, position);
    window_start(position, r.spatial);
    r.x = b * input.batch + group * in_group * input.channel +
          spatial_offset(r.spatial, input.spatial);
    r.cell = activation_cell(b, p, out_channels, out_positions);
    return r;
  }

  __device__ tiled::Column column(int64_t group, int64_t j) const {
    tiled::Column c{};
    c.channel = group * out_group + j;
    c.y = c.channel * kernel.out_channel;
    c.cell = channels_first ? c.channel * out_positions : c.channel;
    return c;
  }

  __device__ tiled::Depth depth(int64_t, int64_t kk) const {
    tiled::Depth d{};
    int64_t c, tap[3];
    channel_tap(kk, in_group, c, tap);
    tap_offset(tap, d.spatial);
    d.x = c * input.channel + spatial_offset(d.spatial, input.spatial);
    d.y = c * kernel.in_channel + spatial_offset(tap, kernel.spatial);
    return d;
  }

  __device__ T x_value(const tiled::Row &r, const tiled::Depth &d) const {
    return padded_input(this->x, r, d);
  }
};

NEARZERO_CONV_CUDA_ENTRY_POINTS(ConvForward)

}  // namespace nearzero
