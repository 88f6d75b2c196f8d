// The convolution's gradient with respect to the input as a gather GEMM for the tiled kernel
// (tiled_classify_cuda.cuh), one GEMM per group: rows (batch, input position), columns the
// input channels of the group, k (output channel of the group, tap); products d_out * kernel.
// A (position, tap) pair that no output position reaches (padding, or off the stride) loads as
// "no class", so it adds nothing, as SPEC §3 asks.
#include "cuda/conv_gather_cuda.cuh"

namespace nearzero {

template <typename T> struct ConvGatherOf<ConvInputGrad, T> : tiled::Operands<T>, ConvIndexing {
  void set_shape(const ConvGeometry &g) {
    this->n = g.batch * in_positions;
    this->k = out_group * taps;
    this->m = in_group;
    this->x_along_k = !channels_first;  // channels_last: out channels (fastest in k) contiguous
    this->y_along_k = true;
  }

  __device__ tiled::Row row(int64_t group, int64_t i) const {
    tiled::Row r{};
    int64_t b, p, position[3];
    batch_position(i, in_positions, in_size, b, p, position);
    r.x = b * output.batch + group * out_group * output.channel;
    for (int d = 0; d < 3; ++d) r.spatial[d] = int32_t(position[d] + pad[d]);
    r.cell = activation_cell(b, p, in_channels, in_positions);
    return r;
  }

  __device__ tiled::Column column(int64_t group, int64_t j) const {
    tiled::Column c{};
    c.channel = group * in_group + j;
    c.y = group * out_group * kernel.out_channel + j * kernel.in_channel;
    c.cell = channels_first ? c.channel * in_positions : c.channel;
    return c;
  }

  // Minus the tap's displacement; x_value adds the row's padded position.
  __device__ tiled::Depth depth(int64_t, int64_t kk) const {
    tiled::Depth d{};
    int64_t c, tap[3];
    channel_tap(kk, out_group, c, tap);
    tap_offset(tap, d.spatial);
    for (int q = 0; q < 3; ++q) d.spatial[q] = -d.spatial[q];
    d.x = c * output.channel;
    d.y = c * kernel.out_channel + spatial_offset(tap, kernel.spatial);
    return d;
  }

  // d_out[q] feeds input position p through tap t when q * stride = p + pad - t * dilation.
  __device__ T x_value(const tiled::Row &r, const tiled::Depth &d) const {
    int64_t at = r.x + d.x;
    for (int q = 0; q < 3; ++q) {
      int32_t v = r.spatial[q] + d.spatial[q];
      if (v < 0) return tiled::quiet_nan(T(0));
      if (stride[q] != 1) {
        if (v % stride[q] != 0) return tiled::quiet_nan(T(0));
        v /= stride[q];
      }
      if (v >= out_size[q]) return tiled::quiet_nan(T(0));
      at += int64_t(v) * output.spatial[q];
    }
    return this->x[at];
  }
};

NEARZERO_CONV_CUDA_ENTRY_POINTS(ConvInputGrad)

}  // namespace nearzero
