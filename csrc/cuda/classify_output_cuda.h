// Where a CUDA classify kernel puts its counts and sums (full result, reduce="all",
// reduce="channel", mask=): cpu/classify_output.h's descriptor, shared by the bindings (g++) and
// the kernels (nvcc); the device-side helpers are in cuda/classify_output_cuda.cuh.
#pragma once
#include "cpu/classify_output.h"

#include <cstdint>

namespace nearzero {

// Pointers are device pointers here; the kernels receive the struct by value.
using DeviceOutput = ClassifyOutput;

}  // namespace nearzero
