// The convolution's gradient with respect to the kernel as a gather GEMM for the tiled kernel
// (tiled_classify_cuda.cuh), one GEMM per group: rows (input channel of the group, tap),
// columns the output channels of the group, k (batch, output position); products x * d_out.
// Padded input positions load as "no class", so they add nothing, as SPEC §3 asks.
#include "cuda/conv_gather_cuda.cuh"

namespace nearzero {

template <typename T> struct ConvGatherOf<ConvFilterGrad, T> : tiled::Operands<T>, ConvIndexing {
  void set_shape(const ConvGeometry &g) {
    this->n = in_group * taps;
    this->k = g.batch * out_positions;
    this->m = out_group;
    this->x_along_k = channels_first;  // channels_first: output positions (fastest in k) contiguous
    this->y_along_k = channels_first;
  }

  __device__ tiled::Row row(int64_t group, int64_t i) const {
    tiled::Row r{};
    int64_t c, tap[3];
    channel_tap(i, in_group, c, tap);
    tap_offset(tap, r.spatial);
    r.x = (group * in_group + c) * input.channel + spatial_offset(r.spatial, input.spatial);
    // kernel cell (out channel, c, tap): i is c * taps + tap, or tap * in_group + c
    r.cell = channels_first ? i : i * out_channels;
    return r;
  }

  __device__ tiled::Column column(int64_t group, int64_t j) const {
    tiled::Column c{};
    c.channel = group * out_group + j;
    c.y = c.channel * output.channel;
    c.cell = channels_first ? c.channel * in_group * taps : c.channel;
    return c;
  }

  __device__ tiled::Depth depth(int64_t, int64_t kk) const {
    tiled::Depth d{};
    int64_t b, p, position[3];
    batch_position(kk, out_positions, out_size, b, p, position);
    window_start(position, d.spatial);
    d.x = b * input.batch + spatial_offset(d.spatial, input.spatial);
    d.y = b * output.batch + spatial_offset(position, output.spatial);
    return d;
  }

  __device__ T x_value(const tiled::Row &r, const tiled::Depth &d) const {
    return padded_input(this->x, r, d);
  }
};

NEARZERO_CONV_CUDA_ENTRY_POINTS(ConvFilterGrad)

}  // namespace nearzero
