// defines: CPU Adafactor update (engine/adafactor_math.h; the reference for the CUDA kernels)
#include "engine/cpu/cpu_factored.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::adafactor(Tensor& param, const Tensor& grad, Tensor& row, Tensor& col, const AdafactorArgs& args) {
  OpTimer timer("adafactor");
  require_f32("adafactor", param);
  require_f32("adafactor", grad);
  const int64_t n = param.numel();
  LLM_CHECK(grad.numel() == n, "adafactor: grad " + grad.str() + " for " + param.str());
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  const FactoredScale scale = update_factored(
      row, col, n, [&](int64_t i) { return adafactor_square(adafactor_grad(g[i], args), args); }, args);
  // u, the update before its clip: the scale times the gradient.
  const auto update = [&](int64_t i) { return scale.at(i) * adafactor_grad(g[i], args); };
  const float divisor = clip_divisor(n, scale.C, update, args);
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; i++) p[i] = adafactor_apply(p[i], update(i), divisor, args);
}

}  // namespace llm
