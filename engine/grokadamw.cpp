// defines: GrokAdamW
#include "engine/grokadamw.h"

#include <cmath>

#include <fmt/format.h>

#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

GrokAdamW::GrokAdamW(std::vector<OptimParam> params, AdamWConfig config, GrokAdamWConfig grok)
    : Optimizer(config), params_(std::move(params)), grok_(grok) {
  for (const OptimParam& p : params_) {
    const Tensor& w = *p.param;
    LLM_CHECK(w.dtype() == DType::f32, "GrokAdamW: " + p.name + " is " + w.str() + "; it updates f32 parameters");
    moments_.emplace_back(w.shape(), /*quantised=*/false, w.device());
    ema_.push_back(Tensor::zeros(w.shape(), DType::f32, w.device()));
  }
  missed_.assign(params_.size(), 0);
}

double GrokAdamW::step(float lr, double max_norm, bool update) {
  int64_t position[2] = {0, 0};  // of the next tensor with a gradient in each group
  return each_update(params_, max_norm, update, [&](size_t i, Tensor& p, const Tensor& grad, float clip) {
    LLM_CHECK(grad.dtype() == DType::f32, "GrokAdamW: the gradient of " + params_[i].name + " is " + grad.str());
    Backend& be = backend(p.device());
    // torch.nn.utils.clip_grad_norm_ on the tensor alone, after the Trainer's global clip.
    float scale = clip;
    if (grok_.gradient_clipping > 0) {
      const double norm = double(clip) * std::sqrt(sum_squares(grad));
      scale *= static_cast<float>(std::min(1.0, double(grok_.gradient_clipping) / (norm + 1e-6)));
    }
    const float alpha = grok_.alpha_init;
    be.axpby(alpha, ema_[i], (1.0f - alpha) * scale, grad, ema_[i]);  // EMA of the clipped gradient
    Tensor amplified = Tensor::empty(grad.shape(), DType::f32, grad.device());
    be.axpby(scale, grad, grok_.lamb, ema_[i], amplified);
    const int64_t t = t_ - missed_[i];
    const float own_lr = lr * params_[i].lr_scale;
    AdamWArgs args = adamw_args(config_, own_lr, t, params_[i].decay);  // step_size and bias2 from beta1
    args.beta1 = static_cast<float>(double(config_.beta1) * std::pow(1.0 - double(grok_.gamma),
                                                                      double(position[params_[i].decay ? 0 : 1]++)));
    args.eps /= args.bias2_sqrt;  // eps beside sqrt(v) before the bias correction (as Muon's AdamW)
    moments_[i].update(p, amplified, args);
  });
}

size_t GrokAdamW::state_bytes() const {
  size_t bytes = 0;
  for (size_t i = 0; i < params_.size(); i++) bytes += moments_[i].bytes() + ema_[i].nbytes();
  return bytes;
}

std::string GrokAdamW::describe() const {
  return fmt::format("GrokAdamW (f32 m, v and gradient EMA; alpha {:g}, lamb {:g}, gamma {:g}, per-tensor clip {:g})",
                     grok_.alpha_init, grok_.lamb, grok_.gamma, grok_.gradient_clipping);
}

std::vector<TensorEntry> GrokAdamW::state_table() const {
  std::vector<TensorEntry> out;
  for (const OptimParam& p : params_) {
    for (TensorEntry& e : moment_table(p.name, p.param->shape(), false)) out.push_back(std::move(e));
    out.push_back({p.name + ".grok_ema", DType::f32, p.param->shape()});
  }
  return out;
}

void GrokAdamW::export_state(const TensorSink& put) {
  for (size_t i = 0; i < params_.size(); i++) {
    moments_[i].export_to(put, params_[i].name, params_[i].param->shape());
    put(params_[i].name + ".grok_ema", ema_[i]);
  }
}

}  // namespace llm
