// defines: CPU AdamW update (one pass over param, grad, m, v)
#include <cmath>

#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, float lr,
                       float beta1, float beta2, float eps, float weight_decay, float step_size,
                       float bias2_sqrt) {
  require_f32("adamw", param);
  require_f32("adamw", grad);
  OpTimer timer("adamw");
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* pm = m.data<float>();
  float* pv = v.data<float>();
  const int64_t n = param.numel();
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; i++) {
    p[i] *= 1.0f - lr * weight_decay;  // decoupled: decay does not pass through the moments
    pm[i] = beta1 * pm[i] + (1.0f - beta1) * g[i];
    pv[i] = beta2 * pv[i] + (1.0f - beta2) * g[i] * g[i];
    p[i] -= step_size * pm[i] / (std::sqrt(pv[i]) / bias2_sqrt + eps);
  }
}

}  // namespace llm
