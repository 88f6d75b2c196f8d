// Fused (batched) matmul classify kernel, CPU. Defined in matmul_cpu.cpp, bound in
// bindings/cpu_module.cpp; tensordot reaches it through a reshape in Python.
#pragma once
#include "common/matmul_problem.h"
#include "cpu/classify_output.h"

#include <cstdint>

namespace nearzero {

template <typename T> void matmul_classify_cpu(const MatmulProblem<T> &p, const ClassifyOutput &out);

}  // namespace nearzero
