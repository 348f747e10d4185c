// defines: CPU CAME update (engine/came_math.h; the reference for the CUDA kernels)
#include <vector>

#include "engine/came_math.h"
#include "engine/cpu/cpu_factored.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::came(Tensor& param, const Tensor& grad, Tensor& m, FactoredMoment& second,
                      FactoredMoment& instability, const CameArgs& args) {
  OpTimer timer("came");
  require_f32("came", param);
  require_f32("came", grad);
  require_f32("came", m);
  const int64_t n = param.numel();
  LLM_CHECK(grad.numel() == n && m.numel() == n, "came: grad " + grad.str() + ", m " + m.str() + " for " + param.str());
  float* p = param.data<float>();
  float* mo = m.data<float>();
  const float* g = grad.data<float>();
  const AdafactorArgs& a = args.second;
  const FactoredScale scale = update_factored(
      second.row, second.col, n, [&](int64_t i) { return adafactor_square(adafactor_grad(g[i], a), a); }, a);
  const auto update = [&](int64_t i) { return scale.at(i) * adafactor_grad(g[i], a); };
  const float divisor = clip_divisor(n, scale.C, update, a);
  // m from the clipped update; a matrix keeps each element's instability for its factored means.
  const bool factored = second.col.defined();
  std::vector<float> unstable(factored ? n : 0);
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; i++) {
    const float u = update(i) / divisor;
    mo[i] = came_momentum(mo[i], u, args);
    if (factored) unstable[i] = came_instability(u, mo[i], args);
  }
  if (!factored) {  // a vector steps along m
#pragma omp parallel for if (n >= kMinParallelElements)
    for (int64_t i = 0; i < n; i++) p[i] = came_apply(p[i], mo[i], args);
    return;
  }
  const FactoredScale confidence = update_factored(
      instability.row, instability.col, n, [&](int64_t i) { return unstable[i]; }, args.instability);
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; i++) p[i] = came_apply(p[i], confidence.at(i) * mo[i], args);
}

}  // namespace llm
