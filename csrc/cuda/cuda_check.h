// CUDA error checking for the kernels: turns a failed CUDA call into std::runtime_error with
// the call and CUDA's own message. Included by .cu files and the CUDA bindings; no pybind11.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace nearzero {

inline void cuda_check(cudaError_t status, const char *what) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string("nearzero CUDA error in ") + what + ": " +
                             cudaGetErrorString(status));
}

}  // namespace nearzero
