// defines: Lomo
#include "engine/lomo.h"

#include <cmath>
#include <unordered_map>

#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

Lomo::Lomo(std::vector<OptimParam> params) : Optimizer(AdamWConfig{}), params_(std::move(params)) {
  for (const OptimParam& p : params_)
    LLM_CHECK(p.param->dtype() == DType::f32, "Lomo: " + p.name + " is " + p.param->str() + "; it updates f32 parameters");
}

// As lomo_optim's gradient hook: the update as soon as the gradient is whole, then the gradient
// dropped. Reading each gradient's norm waits for the device once a parameter: the price of the
// non-finite check (and of the logged norm), in a mode chosen to save memory rather than time.
LeafReadyHook Lomo::updates_in_backward(float lr) {
  std::unordered_map<const AutogradMeta*, Tensor*> param_of;
  for (const OptimParam& p : params_) param_of[p.param->autograd_meta().get()] = p.param;
  return [this, lr, param_of = std::move(param_of)](AutogradMeta& leaf) {
    const auto it = param_of.find(&leaf);
    if (it == param_of.end()) return;
    Tensor& p = *it->second;
    const Tensor grad = p.grad();
    if (!grad.defined()) return;
    const double squares = sum_squares(grad);
    squares_ += squares;
    if (std::isfinite(squares)) backend(p.device()).axpby(1.0f, p, -lr, grad, p);  // torch's p.add_(g, alpha=-lr)
    p.zero_grad();
  };
}

double Lomo::step(float /*lr*/, double /*max_norm*/, bool /*update*/) {
  t_++;
  const double norm = std::sqrt(squares_);
  squares_ = 0.0;
  return norm;
}

std::string Lomo::describe() const {
  return "LOMO (lomo_optim's, as transformers builds it): SGD at the schedule's rate, each parameter updated in "
         "backward as its gradient completes (every micro-batch's), its gradient then dropped; no state, no decay, "
         "no clipping";
}

}  // namespace llm
