// Smoke test of a single-level build without Python (the NEON level on aarch64, see
// scripts/aarch64_smoke.sh): matmul counts and sums of a post-ReLU product against a plain
// loop, counts exact and sums within SPEC §4.
#include "cpu/cpu_kernels.h"
#include "common/classify_rule.h"
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>
using namespace nearzero;
int main() {
  select_cpu_level(nullptr);
  const int n = 37, k = 300, m = 70;
  std::mt19937 gen(1); std::normal_distribution<float> d;
  std::vector<float> x(n * k), y(k * m);
  for (auto &v : x) v = d(gen);
  for (auto &v : y) v = std::max(0.f, d(gen));
  int64_t zero = 0;
  MatmulProblem<float> p{x.data(), y.data(), &zero, &zero, 1, n, k, m, k, 1, m, 1, 0.1f, 0.1f};
  std::vector<int32_t> counts(size_t(n) * m * 9); std::vector<float> sums(counts.size());
  ClassifyOutput out; out.mode = ReduceMode::kNone; out.pairs = 9; out.counts = counts.data();
  out.sums = sums.data(); out.cell_stride = 9; out.pair_stride = 1;
  matmul_classify_cpu<float>(p, out);
  int bad = 0;
  for (int i = 0; i < n; ++i) for (int j = 0; j < m; ++j) {
    int c[9] = {0}; double s[9] = {0}, a[9] = {0};
    for (int q = 0; q < k; ++q) {
      const float u = x[i * k + q], v = y[q * m + j];
      const int pq = class_pair_index(classify_value(u, 0.1f), classify_value(v, 0.1f));
      c[pq]++; s[pq] += double(u) * v; a[pq] += std::fabs(double(u) * v);
    }
    for (int q = 0; q < 9; ++q) {
      const size_t at = (size_t(i) * m + j) * 9 + q;
      double tot = 0; for (int r = 0; r < 9; ++r) tot += a[r];
      if (counts[at] != c[q] || std::fabs(sums[at] - s[q]) > 1e-5 * tot + 1e-30) ++bad;
    }
  }
  std::printf("level %s: %d of %d values differ\n", cpu_levels().selected.c_str(), bad, n * m * 9);
  return bad != 0;
}
