// A fused matmul problem as both backends' kernels take it (host pointers on the CPU, device
// pointers on CUDA).
#pragma once
#include <cstdint>

namespace nearzero {

// One (n, k) @ (k, m) problem per batch entry. Element offsets of each batch's x and y come
// from `x_offsets`/`y_offsets` (so broadcast batches share data); strides are in elements,
// so transposed or sliced inputs need no copy. Cells are numbered (batch * n + i) * m + j.
template <typename T> struct MatmulProblem {
  const T *x;
  const T *y;
  const int64_t *x_offsets;
  const int64_t *y_offsets;
  int64_t batches, n, k, m;
  int64_t x_row_stride, x_col_stride;  // x[i, kk] = x[i * row + kk * col]
  int64_t y_row_stride, y_col_stride;  // y[kk, j] = y[kk * row + j * col]
  T x_threshold, y_threshold;
};

}  // namespace nearzero
