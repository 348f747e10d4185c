// defines: CPU sum, sum_squares
#include "engine/cpu/cpu_backend.h"

namespace llm {

// Reductions run serially in f64 so their result does not depend on the thread count.
void CpuBackend::sum(const Tensor& x, Tensor& out) {
  require_f32("sum", x);
  const float* p = x.data<float>();
  double acc = 0.0;
  for (int64_t i = 0; i < x.numel(); i++) acc += p[i];
  out.data<float>()[0] = static_cast<float>(acc);
}

double CpuBackend::sum_squares(const Tensor& x) {
  require_f32("sum_squares", x);
  const float* p = x.data<float>();
  double acc = 0.0;
  for (int64_t i = 0; i < x.numel(); i++) acc += static_cast<double>(p[i]) * p[i];
  return acc;
}

}  // namespace llm
