// Elementwise classify kernels for CUDA: one thread per cell for the full result (pair-major
// stores stay coalesced); for reductions each block walks the cells of one channel and adds its
// block total with one atomic per pair.
#include "common/classify_rule.h"
#include "cuda/classify_output_cuda.cuh"
#include "cuda/cuda_check.h"
#include "cuda/device_info_cuda.h"
#include "cuda/elementwise_cuda.h"

#include <algorithm>

namespace nearzero {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ void cell_offsets(const ElementwiseGeometry &g, int64_t cell,
                                             int64_t &x_offset, int64_t &y_offset) {
  x_offset = 0;
  y_offset = 0;
  for (int d = g.rank - 1; d >= 0; --d) {
    const int64_t index = cell % g.shape[d];
    cell /= g.shape[d];
    x_offset += index * g.x_strides[d];
    y_offset += index * g.y_strides[d];
  }
}

// Class pair of one cell (kNoClass when a NaN is involved) and the value its sum gets.
template <typename T, int kPairs>
__device__ __forceinline__ int classify_cell(const T *x, const T *y, int64_t x_offset,
                                             int64_t y_offset, T tx, T ty, T &value) {
  const T a = x[x_offset];
  const int ca = classify_value(a, tx);
  if (kPairs == 3) {
    value = a;
    return ca;
  }
  const T b = y[y_offset];
  const int cb = classify_value(b, ty);
  value = a * b;
  return (ca == kNoClass || cb == kNoClass) ? kNoClass : class_pair_index(ca, cb);
}

template <typename T, int kPairs>
__global__ void __launch_bounds__(kThreads)
    elementwise_full_kernel(const T *x, const T *y, ElementwiseGeometry g, int64_t cells, T tx,
                            T ty, ClassifyOutput out) {
  for (int64_t cell = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; cell < cells;
       cell += int64_t(gridDim.x) * blockDim.x) {
    int64_t xo, yo;
    cell_offsets(g, cell, xo, yo);
    T value;
    const int pair = classify_cell<T, kPairs>(x, y, xo, yo, tx, ty, value);
    int32_t counts[kPairs];
    T sums[kPairs];
#pragma unroll
    for (int p = 0; p < kPairs; ++p) {
      counts[p] = pair == p;
      sums[p] = pair == p ? value : T(0);
    }
    store_cell<T>(out, cell, counts, sums);
  }
}

// Block (blockIdx.x, slot) reduces cells (o * channels + slot) * inner + r of its slot.
template <typename T, int kPairs>
__global__ void __launch_bounds__(kThreads)
    elementwise_reduce_kernel(const T *x, const T *y, ElementwiseGeometry g, int64_t outer,
                              int64_t channels, int64_t inner, int64_t slots, T tx, T ty,
                              ClassifyOutput out) {
  const int64_t per_slot = outer * inner;
  for (int64_t slot = blockIdx.y; slot < slots; slot += gridDim.y) {
    int64_t counts[kPairs];
    double sums[kPairs];
#pragma unroll
    for (int p = 0; p < kPairs; ++p) {
      counts[p] = 0;
      sums[p] = 0.0;
    }
    for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < per_slot;
         t += int64_t(gridDim.x) * blockDim.x) {
      const int64_t cell = ((t / inner) * channels + slot) * inner + t % inner;
      if (!cell_wanted(out, cell)) continue;
      int64_t xo, yo;
      cell_offsets(g, cell, xo, yo);
      T value;
      const int pair = classify_cell<T, kPairs>(x, y, xo, yo, tx, ty, value);
#pragma unroll
      for (int p = 0; p < kPairs; ++p) {
        counts[p] += pair == p;
        sums[p] += pair == p ? double(value) : 0.0;
      }
    }
    device_output::block_add_to_slot<kPairs>(out, slot, counts, sums);
  }
}

template <typename T, int kPairs>
void launch_elementwise(const T *x, const T *y, const ElementwiseGeometry &g, T tx, T ty,
                        const ClassifyOutput &out, void *stream) {
  int64_t cells = 1;
  for (int d = 0; d < g.rank; ++d) cells *= g.shape[d];
  if (cells == 0) return;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  const int64_t resident_blocks = int64_t(multiprocessor_count()) * (2048 / kThreads);
  if (out.mode == ReduceMode::kNone) {
    const int64_t blocks = std::min<int64_t>((cells + kThreads - 1) / kThreads, resident_blocks * 4);
    elementwise_full_kernel<T, kPairs><<<unsigned(blocks), kThreads, 0, s>>>(x, y, g, cells, tx,
                                                                              ty, out);
  } else {
    // "all" is one channel spanning every cell.
    const bool all = out.mode == ReduceMode::kAll;
    const int64_t channels = all ? 1 : out.channels, inner = all ? cells : out.channel_inner;
    const int64_t outer = cells / (channels * inner);
    const int64_t per_slot = outer * inner;
    const int64_t slot_blocks = std::min<int64_t>(65535, channels);
    const int64_t blocks_per_slot = std::max<int64_t>(
        1, std::min<int64_t>((per_slot + kThreads - 1) / kThreads,
                             (resident_blocks + slot_blocks - 1) / slot_blocks));
    const dim3 grid{unsigned(blocks_per_slot), unsigned(slot_blocks)};
    elementwise_reduce_kernel<T, kPairs><<<grid, kThreads, 0, s>>>(x, y, g, outer, channels, inner,
                                                                   channels, tx, ty, out);
  }
  cuda_check(cudaGetLastError(), "elementwise classify kernel launch");
}

}  // namespace

template <typename T>
void tensor_classify_cuda(const T *x, const ElementwiseGeometry &geometry, T threshold,
                          const ClassifyOutput &out, void *stream) {
  launch_elementwise<T, 3>(x, x, geometry, threshold, threshold, out, stream);
}

template <typename T>
void multiply_classify_cuda(const T *x, const T *y, const ElementwiseGeometry &geometry,
                            T x_threshold, T y_threshold, const ClassifyOutput &out, void *stream) {
  launch_elementwise<T, 9>(x, y, geometry, x_threshold, y_threshold, out, stream);
}

template void tensor_classify_cuda<float>(const float *, const ElementwiseGeometry &, float,
                                          const ClassifyOutput &, void *);
template void tensor_classify_cuda<double>(const double *, const ElementwiseGeometry &, double,
                                           const ClassifyOutput &, void *);
template void multiply_classify_cuda<float>(const float *, const float *,
                                            const ElementwiseGeometry &, float, float,
                                            const ClassifyOutput &, void *);
template void multiply_classify_cuda<double>(const double *, const double *,
                                             const ElementwiseGeometry &, double, double,
                                             const ClassifyOutput &, void *);

}  // namespace nearzero
