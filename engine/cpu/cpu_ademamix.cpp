// defines: CPU AdEMAMix updates, f32 and 8-bit blockwise state (the reference for the CUDA kernels)
#include "engine/cpu/blockwise_8bit.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::ademamix(Tensor& param, const Tensor& grad, Tensor& m1, Tensor& m2, Tensor& nu,
                          const AdemamixArgs& args) {
  OpTimer timer("ademamix");
  require_f32("ademamix", param);
  require_f32("ademamix", grad);
  const int64_t n = param.numel();
  for (const Tensor* t : {&m1, &m2, &nu}) {
    require_f32("ademamix", *t);
    LLM_CHECK(t->numel() == n, "ademamix: moment " + t->str() + " for " + param.str());
  }
  LLM_CHECK(grad.numel() == n, "ademamix: grad " + grad.str() + " for " + param.str());
  float* p = param.data<float>();
  float *a = m1.data<float>(), *b = m2.data<float>(), *c = nu.data<float>();
  const float* g = grad.data<float>();
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; i++) p[i] = ademamix_element(p[i], g[i], a[i], b[i], c[i], args);
}

void CpuBackend::ademamix_8bit(Tensor& param, const Tensor& grad, Tensor& m1_codes, Tensor& m1_absmax, Tensor& m2_codes,
                               Tensor& m2_absmax, Tensor& nu_codes, Tensor& nu_absmax, const AdemamixArgs& args) {
  OpTimer timer("ademamix_8bit");
  update_blockwise_8bit<3>(
      "ademamix_8bit", param, grad,
      {{{&m1_codes, &m1_absmax, true}, {&m2_codes, &m2_absmax, true}, {&nu_codes, &nu_absmax, false}}},
      [&args](float p, float g, float* m) { return ademamix_element(p, g, m[0], m[1], m[2], args); });
}

}  // namespace llm
