// Thin wrappers over OpenMP so kernels compile (serially) without it.
// Included by CPU kernels only.
#pragma once
#include <cstdint>

#if defined(NEARZERO_HAVE_OPENMP)
#include <omp.h>
#endif

namespace nearzero {

inline int max_threads() {
#if defined(NEARZERO_HAVE_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline int thread_index() {
#if defined(NEARZERO_HAVE_OPENMP)
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Splits [0, n) into `parts` nearly equal chunks; returns chunk `part` as [begin, end).
inline void chunk_range(int64_t n, int parts, int part, int64_t &begin, int64_t &end) {
  const int64_t base = n / parts, extra = n % parts;
  begin = part * base + (part < extra ? part : extra);
  end = begin + base + (part < extra ? 1 : 0);
}

}  // namespace nearzero
