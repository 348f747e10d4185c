// defines: CPU AdamW update (one pass over param, grad, m, v)
#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                       const AdamWArgs& args) {
  require_f32("adamw", param);
  require_f32("adamw", grad);
  OpTimer timer("adamw");
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* pm = m.data<float>();
  float* pv = v.data<float>();
  const int64_t n = param.numel();
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; i++) p[i] = adamw_element(p[i], g[i], pm[i], pv[i], args);
}

}  // namespace llm
