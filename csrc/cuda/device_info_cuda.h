// The CUDA device facts the ops need: device count, free memory (for the size guard), the
// multiprocessor count (for grid sizes) and a guard that runs code on a chosen device.
// Defined in device_info_cuda.cu; used by kernels' host code and the bindings.
#pragma once
#include <cstdint>
#include <utility>

namespace nearzero {

int cuda_device_count();

// (free bytes, total bytes) of `device`, from cudaMemGetInfo.
std::pair<int64_t, int64_t> cuda_memory_info(int device);

// Multiprocessors of the current device.
int multiprocessor_count();

// Makes `device` current for its lifetime and restores the previous device afterwards, so
// kernels launch where the caller's arrays live.
class CudaDeviceGuard {
public:
  explicit CudaDeviceGuard(int device);
  ~CudaDeviceGuard();
  CudaDeviceGuard(const CudaDeviceGuard &) = delete;
  CudaDeviceGuard &operator=(const CudaDeviceGuard &) = delete;

private:
  int previous_ = -1;
};

// Blocks the host until `stream` has finished its queued work; raises on a CUDA error.
void synchronize_stream(void *stream);

}  // namespace nearzero
