// Warp-level helpers of the CUDA kernels. Included by the .cu kernels only.
#pragma once

namespace nearzero {

// The sum of `v` over the 32 lanes of a warp, in every lane; all lanes must call it.
template <typename V> __device__ __forceinline__ V warp_sum(V v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

}  // namespace nearzero
