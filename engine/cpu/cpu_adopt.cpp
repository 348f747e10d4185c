// defines: CPU ADOPT update (one pass over param, grad, m, v)
#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::adopt(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdoptArgs& args) {
  require_f32("adopt", param);
  require_f32("adopt", grad);
  OpTimer timer("adopt");
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* pm = m.data<float>();
  float* pv = v.data<float>();
  const int64_t n = param.numel();
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; i++) p[i] = adopt_element(p[i], g[i], pm[i], pv[i], args);
}

}  // namespace llm
