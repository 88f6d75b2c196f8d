// Fused (batched) matmul classify on CUDA: the GPU twin of cpu/matmul_cpu.h, taking the same
// MatmulProblem (common/matmul_problem.h) with device pointers (data and per-batch offsets).
// Defined in matmul_cuda.cu; bound in bindings/cuda_matmul.cpp.
#pragma once
#include "common/matmul_problem.h"
#include "common/result_descriptor.h"

namespace nearzero {

// `has_infinity`: an input holds +-inf. The tiled kernel multiplies masked copies of the inputs
// (0 * inf would leak NaN into other classes), so such inputs take the exact per-cell kernel.
// `scratch`: matmul_scratch_doubles<T>(k, has_infinity) doubles of device memory (null if 0).
// reduce="channel" needs out.channel_inner == 1: the channel is the last value axis.
template <typename T>
void matmul_classify_cuda(const MatmulProblem<T> &p, const ClassifyOutput &out, bool has_infinity,
                          double *scratch, int64_t scratch_doubles, void *stream);

// Device scratch (in doubles) matmul_classify_cuda needs on the current device.
template <typename T> int64_t matmul_scratch_doubles(int64_t k, bool has_infinity);

}  // namespace nearzero
