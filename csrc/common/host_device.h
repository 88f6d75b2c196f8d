// NEARZERO_HOST_DEVICE marks the inline functions of csrc/common/ that both backends run: host
// and device code under nvcc, plain inline functions under a host compiler (the CPU module and
// the CPU emulation of the CUDA sources). Headers that use it stay free of library headers
// that nvcc's device pass cannot compile.
#pragma once

#if defined(__CUDACC__)
#define NEARZERO_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define NEARZERO_HOST_DEVICE inline
#endif
