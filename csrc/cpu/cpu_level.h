// Force-included first (compiler option -include, see CMakeLists.txt) in every kernel
// translation unit that the build compiles once per CPU level, with NEARZERO_CPU_LEVEL set to
// the level (v2, v3, v4 on x86-64). It gives that level's copy its own names for everything
// with external linkage that the kernels define: the entry points, the detail namespaces and
// CellWriter. Without it the linker would keep one copy of each for all levels (the first it
// meets), so AVX-512 code could run on a CPU without AVX-512, or the other way round the v4
// kernels would call v2 helpers. What is left shared (standard-library templates, the small
// inline helpers of common/ and cpu/parallel.h) is resolved to the lowest level's copy, as the
// objects of lower levels come first on the link line; docs/design.md, "CPU dispatch", says why
// that is safe.
#pragma once

#define NEARZERO_LEVEL_PASTE2(a, b) a##_##b
#define NEARZERO_LEVEL_PASTE(a, b) NEARZERO_LEVEL_PASTE2(a, b)
#define NEARZERO_LEVEL_NAME(name) NEARZERO_LEVEL_PASTE(name, NEARZERO_CPU_LEVEL)

#define matmul_detail NEARZERO_LEVEL_NAME(matmul_detail)
#define conv_detail NEARZERO_LEVEL_NAME(conv_detail)
#define CellWriter NEARZERO_LEVEL_NAME(CellWriter)
#define matmul_classify_cpu NEARZERO_LEVEL_NAME(matmul_classify_cpu)
#define conv_classify_cpu NEARZERO_LEVEL_NAME(conv_classify_cpu)
#define conv_backprop_filter_classify_cpu NEARZERO_LEVEL_NAME(conv_backprop_filter_classify_cpu)
#define conv_backprop_input_classify_cpu NEARZERO_LEVEL_NAME(conv_backprop_input_classify_cpu)
#define tensor_classify_cpu NEARZERO_LEVEL_NAME(tensor_classify_cpu)
#define multiply_classify_cpu NEARZERO_LEVEL_NAME(multiply_classify_cpu)
#define level_kernels NEARZERO_LEVEL_NAME(level_kernels)
