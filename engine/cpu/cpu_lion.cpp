// defines: CPU Lion updates, f32 and 8-bit blockwise state (the reference for the CUDA kernels)
#include "engine/cpu/blockwise_8bit.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::lion(Tensor& param, const Tensor& grad, Tensor& m, const LionArgs& args) {
  OpTimer timer("lion");
  require_f32("lion", param);
  require_f32("lion", grad);
  require_f32("lion", m);
  LLM_CHECK(grad.numel() == param.numel() && m.numel() == param.numel(),
            "lion: grad " + grad.str() + " and m " + m.str() + " for " + param.str());
  float* p = param.data<float>();
  float* pm = m.data<float>();
  const float* g = grad.data<float>();
  const int64_t n = param.numel();
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; i++) p[i] = lion_element(p[i], g[i], pm[i], args);
}

void CpuBackend::lion_8bit(Tensor& param, const Tensor& grad, Tensor& m_codes, Tensor& m_absmax,
                           const LionArgs& args) {
  OpTimer timer("lion_8bit");
  update_blockwise_8bit<1>("lion_8bit", param, grad, {{{&m_codes, &m_absmax, true}}},
                           [&args](float p, float g, float* m) { return lion_element(p, g, m[0], args); });
}

}  // namespace llm
