// The tiled matmul classify kernel (matmul_tiled_cuda.cu): tile geometry, and the per-block
// double scratch that float sums need for very long k. Used by matmul_cuda.cu and the bindings.
#pragma once
#include "cpu/matmul_cpu.h"
#include "cuda/classify_output_cuda.h"

#include <cstdint>

namespace nearzero {
namespace matmul_tiling {
constexpr int kTile = 32;        // rows, columns and k of one block tile
constexpr int kThreads = 256;    // 16 x 16 threads
constexpr int kCells = 4;        // 2 x 2 cells per thread
constexpr int kAccumulators = kCells * 9;
}  // namespace matmul_tiling

// Doubles of device scratch the tiled kernel needs for this k (0 when none) on the current device.
template <typename T> int64_t matmul_tiled_scratch_doubles(int64_t k);

// Finite inputs, k < 2^31. `scratch`: matmul_tiled_scratch_doubles(k) doubles, or null when 0.
template <typename T>
void matmul_classify_tiled_cuda(const MatmulProblem<T> &p, const DeviceOutput &out,
                                double *scratch, int64_t scratch_doubles, void *stream);

}  // namespace nearzero
