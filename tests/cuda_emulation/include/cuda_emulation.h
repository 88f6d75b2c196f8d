// Runs the CUDA kernel sources on the CPU so that machines without a GPU can test them. Each
// CUDA thread of a block is a fiber (ucontext) on one OS thread: __syncthreads waits until every
// live thread of the block arrives, warp intrinsics until every live lane of the warp arrives
// (threads that have returned no longer take part, as on Volta and later). Blocks run one after
// another; a deadlock aborts. It checks index arithmetic and kernel logic, not timing or races.
// Force-included (g++ -include) into sources rewritten by build_emulated_module.py.
#pragma once
#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static  // one block runs at a time, so function statics act as shared memory
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
  unsigned x = 0, y = 0, z = 0;
};
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) double2 { double x, y; };

namespace emu {

enum class Wait { kNone, kBlock, kWarp };

struct Fiber {
  ucontext_t context;
  std::vector<char> stack;
  Wait wait = Wait::kNone;
  bool done = false;
  uint64_t slot = 0;  // the value this lane offers to a warp exchange
};

struct Launch {
  std::vector<Fiber> fibers;
  std::vector<uint64_t> snapshot;  // [warp * 32 + lane]: slots at the last warp release
  std::vector<unsigned char> dynamic_shared;
  ucontext_t scheduler;
  const std::function<void()> *body = nullptr;
  unsigned current = 0;
};

inline Launch *launch_state = nullptr;
inline uint3 block_index;
inline dim3 block_dim, grid_dim;

inline uint3 thread_index() {
  uint3 t;
  t.x = launch_state->current;
  return t;
}
inline unsigned char *dynamic_shared() { return launch_state->dynamic_shared.data(); }

template <typename T> uint64_t bits_of(T v) {
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <typename T> T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

inline void wait_for(Wait kind) {
  Fiber &f = launch_state->fibers[launch_state->current];
  f.wait = kind;
  swapcontext(&f.context, &launch_state->scheduler);
}

// Offers a value to the warp; returns the lane's view of every lane's offer.
inline const uint64_t *exchange(uint64_t value) {
  const unsigned me = launch_state->current;
  launch_state->fibers[me].slot = value;
  wait_for(Wait::kWarp);
  return launch_state->snapshot.data() + (me / 32) * 32;
}

inline void trampoline() {
  (*launch_state->body)();
  launch_state->fibers[launch_state->current].done = true;
}

// Releases the block barrier or warps whose live threads have all arrived; false if none could.
inline bool release(Launch &l) {
  const unsigned n = unsigned(l.fibers.size());
  bool any_live = false, block_ready = true;
  for (const Fiber &f : l.fibers)
    if (!f.done) {
      any_live = true;
      block_ready = block_ready && f.wait == Wait::kBlock;
    }
  if (!any_live) return false;
  if (block_ready) {
    for (Fiber &f : l.fibers) f.wait = Wait::kNone;
    return true;
  }
  bool released = false;
  for (unsigned w = 0; w < n / 32; ++w) {
    bool live = false, ready = true;
    for (unsigned t = w * 32; t < w * 32 + 32; ++t)
      if (!l.fibers[t].done) {
        live = true;
        ready = ready && l.fibers[t].wait == Wait::kWarp;
      }
    if (!live || !ready) continue;
    for (unsigned t = w * 32; t < w * 32 + 32; ++t) {
      l.snapshot[t] = l.fibers[t].slot;
      l.fibers[t].wait = Wait::kNone;
    }
    released = true;
  }
  return released;
}

inline void launch(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()> &body) {
  if (block.x % 32 != 0 || block.y != 1 || block.z != 1) std::abort();
  static Launch l;
  grid_dim = grid;
  block_dim = block;
  l.fibers.resize(block.x);
  l.snapshot.assign(block.x, 0);
  l.body = &body;
  launch_state = &l;
  for (unsigned by = 0; by < grid.y; ++by)
    for (unsigned bx = 0; bx < grid.x; ++bx) {
      block_index.x = bx;
      block_index.y = by;
      l.dynamic_shared.assign(shared_bytes + 16, 0xCD);  // garbage, as on a GPU
      for (unsigned t = 0; t < block.x; ++t) {
        Fiber &f = l.fibers[t];
        f.stack.resize(256 * 1024);
        f.done = false;
        f.wait = Wait::kNone;
        getcontext(&f.context);
        f.context.uc_stack.ss_sp = f.stack.data();
        f.context.uc_stack.ss_size = f.stack.size();
        f.context.uc_link = &l.scheduler;
        makecontext(&f.context, trampoline, 0);
      }
      while (true) {
        for (unsigned t = 0; t < block.x; ++t) {
          Fiber &f = l.fibers[t];
          if (f.done || f.wait != Wait::kNone) continue;
          l.current = t;
          swapcontext(&l.scheduler, &f.context);
        }
        if (release(l)) continue;
        bool all_done = true;
        for (const Fiber &f : l.fibers) all_done = all_done && f.done;
        if (all_done) break;
        std::fprintf(stderr, "cuda emulation: deadlock in block (%u, %u)\n", bx, by);
        std::abort();
      }
    }
  launch_state = nullptr;
}

}  // namespace emu

#define threadIdx (::emu::thread_index())
#define blockIdx (::emu::block_index)
#define blockDim (::emu::block_dim)
#define gridDim (::emu::grid_dim)

inline void __syncthreads() { emu::wait_for(emu::Wait::kBlock); }

inline unsigned __ballot_sync(unsigned, bool p) {
  const uint64_t *s = emu::exchange(p ? 1 : 0);
  unsigned r = 0;
  for (int l = 0; l < 32; ++l) r |= unsigned(s[l] != 0) << l;
  return r;
}
inline bool __all_sync(unsigned, bool p) {
  const uint64_t *s = emu::exchange(p ? 1 : 0);
  for (int l = 0; l < 32; ++l)
    if (!s[l]) return false;
  return true;
}
template <typename T> T __shfl_sync(unsigned, T v, int source) {
  return emu::from_bits<T>(emu::exchange(emu::bits_of(v))[source & 31]);
}
template <typename T> T __shfl_xor_sync(unsigned, T v, int mask) {
  const unsigned lane = threadIdx.x & 31u;
  return emu::from_bits<T>(emu::exchange(emu::bits_of(v))[(lane ^ unsigned(mask)) & 31]);
}

// One OS thread runs every CUDA thread, so read-modify-write is atomic as written.
template <typename T> T atomicAdd(T *p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
template <typename T> T atomicMax(T *p, T v) {
  const T old = *p;
  *p = std::max(old, v);
  return old;
}
template <typename T> T atomicMin(T *p, T v) {
  const T old = *p;
  *p = std::min(old, v);
  return old;
}

inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline unsigned __float_as_uint(float v) { return emu::from_bits<unsigned>(emu::bits_of(v)); }
inline float __uint_as_float(unsigned v) { return emu::from_bits<float>(v); }
inline float __int_as_float(int v) { return emu::from_bits<float>(uint32_t(v)); }
inline long long __double_as_longlong(double v) { return emu::from_bits<long long>(emu::bits_of(v)); }
inline double __longlong_as_double(long long v) { return emu::from_bits<double>(uint64_t(v)); }
using std::max;
using std::min;

// The runtime API the kernels' host code calls.
using cudaStream_t = void *;
enum cudaError_t { cudaSuccess = 0, cudaErrorInvalidValue = 1 };
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };

// Two "multiprocessors": persistent grids loop over several tiles per block.
inline constexpr int kEmulatedMultiprocessors = 2;

inline const char *cudaGetErrorString(cudaError_t e) { return e ? "emulated error" : "no error"; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
inline cudaError_t cudaGetDevice(int *d) { *d = 0; return cudaSuccess; }
inline cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidValue; }
inline cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr, int) {
  *v = kEmulatedMultiprocessors;
  return cudaSuccess;
}
inline cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
  *free_bytes = size_t(1) << 34;
  *total = size_t(1) << 35;
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t = nullptr) {
  std::memset(p, v, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind,
                                   cudaStream_t = nullptr) {
  std::memcpy(d, s, n);
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
template <typename F> cudaError_t cudaFuncSetAttribute(F, cudaFuncAttribute, int) {
  return cudaSuccess;
}
template <typename F>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *n, F, int, size_t) {
  *n = 2;
  return cudaSuccess;
}
