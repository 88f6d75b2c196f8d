// Matmul classify dispatch on CUDA, and the exact per-cell kernel for inputs the tiled kernel
// cannot take (+-inf, where masked planes would turn 0 * inf into NaN; k >= 2^31, where its
// int32 counters would overflow). One thread per cell, products summed pair by pair in double.
#include "common/classify_rule.h"
#include "cuda/classify_output_cuda.cuh"
#include "cuda/cuda_check.h"
#include "cuda/device_info_cuda.h"
#include "cuda/matmul_cuda.h"
#include "cuda/matmul_tiled_cuda.h"

#include <algorithm>
#include <climits>
#include <stdexcept>

namespace nearzero {
namespace {

constexpr int kExactThreads = 128;

template <typename T>
__global__ void __launch_bounds__(kExactThreads)
    matmul_exact_kernel(MatmulProblem<T> p, DeviceOutput out) {
  const int64_t cells = p.batches * p.n * p.m;
  for (int64_t cell = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; cell < cells;
       cell += int64_t(gridDim.x) * blockDim.x) {
    if (out.mode != ReduceMode::kNone && !device_output::cell_wanted(out, cell)) continue;
    const int64_t batch = cell / (p.n * p.m), i = (cell / p.m) % p.n, j = cell % p.m;
    const T *x = p.x + p.x_offsets[batch] + i * p.x_row_stride;
    const T *y = p.y + p.y_offsets[batch] + j * p.y_col_stride;
    int64_t counts[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    double sums[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t kk = 0; kk < p.k; ++kk) {
      const T a = x[kk * p.x_col_stride], b = y[kk * p.y_row_stride];
      const int ca = classify_value(a, p.x_threshold), cb = classify_value(b, p.y_threshold);
      if (ca == kNoClass || cb == kNoClass) continue;
      const int pair = class_pair_index(ca, cb);
      const double product = double(a) * double(b);
#pragma unroll
      for (int q = 0; q < 9; ++q) {  // selects keep the arrays in registers
        counts[q] += pair == q;
        sums[q] += pair == q ? product : 0.0;
      }
    }
    if (out.mode == ReduceMode::kNone)
      device_output::store_cell<T>(out, cell, counts, sums);
    else
      device_output::add_cell_atomic(out, cell, counts, sums);
  }
}

}  // namespace

// The tiled kernel's int32 counters and masked planes need finite inputs and k < 2^31.
template <typename T> bool uses_tiled_kernel(int64_t k, bool has_infinity) {
  return !has_infinity && k <= INT_MAX;
}

template <typename T> int64_t matmul_scratch_doubles(int64_t k, bool has_infinity) {
  return uses_tiled_kernel<T>(k, has_infinity) ? matmul_tiled_scratch_doubles<T>(k) : 0;
}

template <typename T>
void matmul_classify_cuda(const MatmulProblem<T> &p, const DeviceOutput &out, bool has_infinity,
                          double *scratch, int64_t scratch_doubles, void *stream) {
  if (p.batches == 0 || p.n == 0 || p.m == 0) return;
  if (out.mode == ReduceMode::kChannel) {
    const int64_t axis = p.m > 1 ? p.m : p.n;
    if (out.channel_inner != 1 || out.channels <= 0 || axis % out.channels != 0)
      throw std::invalid_argument(
          "nearzero: matmul reduce='channel' reduces over the last value axis only");
  }
  if (uses_tiled_kernel<T>(p.k, has_infinity)) {
    matmul_classify_tiled_cuda<T>(p, out, scratch, scratch_doubles, stream);
    return;
  }
  const int64_t cells = p.batches * p.n * p.m;
  const int64_t blocks = std::min<int64_t>((cells + kExactThreads - 1) / kExactThreads,
                                           int64_t(multiprocessor_count()) * 64);
  matmul_exact_kernel<T><<<unsigned(blocks), kExactThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      p, out);
  cuda_check(cudaGetLastError(), "matmul classify (exact) kernel launch");
}

template int64_t matmul_scratch_doubles<float>(int64_t, bool);
template int64_t matmul_scratch_doubles<double>(int64_t, bool);
template void matmul_classify_cuda<float>(const MatmulProblem<float> &, const DeviceOutput &, bool,
                                          double *, int64_t, void *);
template void matmul_classify_cuda<double>(const MatmulProblem<double> &, const DeviceOutput &,
                                           bool, double *, int64_t, void *);

}  // namespace nearzero
