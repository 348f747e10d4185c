// defines: Lomo
#include "engine/lomo.h"

#include "engine/backend.h"
#include "engine/check.h"

namespace llm {

Lomo::Lomo(std::vector<OptimParam> params) : Optimizer(AdamWConfig{}), params_(std::move(params)) {
  for (const OptimParam& p : params_)
    LLM_CHECK(p.param->dtype() == DType::f32, "Lomo: " + p.name + " is " + p.param->str() + "; it updates f32 parameters");
}

// As lomo_optim's gradient hook: the update as soon as the gradient is whole, then the gradient dropped.
LeafReadyHook Lomo::pass_updates(float lr) {
  return updates_as_gradients_complete(params_, [lr](size_t, Tensor& p, const Tensor& grad) {
    backend(p.device()).axpby(1.0f, p, -lr, grad, p);  // torch's p.add_(g, alpha=-lr)
  });
}

double Lomo::step(float /*lr*/, double /*max_norm*/, bool /*update*/) {
  t_++;
  return take_backward_norm();
}

std::string Lomo::describe() const {
  return "LOMO (lomo_optim's, as transformers builds it): SGD at the schedule's rate, each parameter updated in "
         "backward as its gradient completes (every micro-batch's), its gradient then dropped; no state, no decay, "
         "no clipping";
}

}  // namespace llm
