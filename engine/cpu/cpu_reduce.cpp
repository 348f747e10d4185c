// defines: CPU sum, add_sum_squares
#include <algorithm>
#include <vector>

#include "engine/cpu/cpu_backend.h"

namespace llm {

// Reductions run in f64 in an order fixed by the size alone, so their result does not depend on
// the thread count.
void CpuBackend::sum(const Tensor& x, Tensor& out) {
  require_f32("sum", x);
  const float* p = x.data<float>();
  double acc = 0.0;
  for (int64_t i = 0; i < x.numel(); i++) acc += p[i];
  out.data<float>()[0] = static_cast<float>(acc);
}

namespace {
// Eight interleaved partial sums, added in a fixed order at the end: independent adds the
// compiler can put in SIMD lanes, where one running sum is a serial chain.
double sum_squares_serial(const float* p, int64_t n) {
  double acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) acc[j] += static_cast<double>(p[i + j]) * p[i + j];
  for (; i < n; i++) acc[0] += static_cast<double>(p[i]) * p[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
}  // namespace

// Fixed chunks summed in parallel, then their partial sums added serially in order.
void CpuBackend::add_sum_squares(const Tensor& x, Tensor& acc) {
  require_f32("sum_squares", x);
  require_f64_accumulator("add_sum_squares", acc);
  const float* p = x.data<float>();
  const int64_t n = x.numel();
  constexpr int64_t kChunk = int64_t(1) << 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(chunks);
#pragma omp parallel for if (chunks > 1)
  for (int64_t c = 0; c < chunks; c++)
    partial[c] = sum_squares_serial(p + c * kChunk, std::min(kChunk, n - c * kChunk));
  double total = 0.0;
  for (double s : partial) total += s;
  double* sum = static_cast<double*>(acc.data_ptr());
  *sum += total;
}

}  // namespace llm
