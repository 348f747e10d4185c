// defines: StableAdamW
#include "engine/stable_adamw.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

StableAdamW::StableAdamW(std::vector<OptimParam> params, AdamWConfig config, StableAdamWConfig stable)
    : Optimizer(config), params_(std::move(params)), stable_(stable) {
  LLM_CHECK(!stable_.decouple_lr || stable_.max_lr > 0, "StableAdamW: decouple_lr needs max_lr > 0");
  for (const OptimParam& p : params_) {
    const Tensor& w = *p.param;
    LLM_CHECK(w.dtype() == DType::f32, "StableAdamW: " + p.name + " is " + w.str() + "; it updates f32 parameters");
    moments_.emplace_back(w.shape(), /*quantised=*/false, w.device());
  }
  missed_.assign(params_.size(), 0);
}

double StableAdamW::step(float lr, double max_norm, bool update) {
  return each_update(params_, max_norm, update, [&](size_t i, Tensor& p, const Tensor& grad, float clip) {
    LLM_CHECK(grad.dtype() == DType::f32, "StableAdamW: the gradient of " + params_[i].name + " is " + grad.str());
    const int64_t t = t_ - missed_[i];
    Backend& be = backend(p.device());
    const StableRmsArgs rms_args{config_.beta2, 1.0f - std::pow(config_.beta2, static_cast<float>(t)),
                                 config_.eps * config_.eps, clip};
    Tensor acc = Tensor::zeros({2}, DType::f32, p.device());  // one f64
    be.add_stable_adamw_ratios(grad, moments_[i].v, rms_args, acc);
    const float rms = static_cast<float>(std::sqrt(read_f64_accumulator(acc) / static_cast<double>(p.numel())));
    const float own_lr = lr * params_[i].lr_scale / std::max(1.0f, rms);
    AdamWArgs args = adamw_args(config_, own_lr, t, params_[i].decay);
    // Fully decoupled decay: weight_decay x own_lr / max_lr, the kernel's lr x weight_decay.
    if (stable_.decouple_lr) args.weight_decay /= stable_.max_lr;
    args.grad_scale = clip;
    moments_[i].update(p, grad, args);
  });
}

size_t StableAdamW::state_bytes() const {
  size_t bytes = 0;
  for (const AdamWMoments& m : moments_) bytes += m.bytes();
  return bytes;
}

std::string StableAdamW::describe() const {
  return stable_.decouple_lr ? fmt::format("StableAdamW (f32 moments; decay relative to max_lr {:g})", stable_.max_lr)
                             : "StableAdamW (f32 moments)";
}

std::vector<TensorEntry> StableAdamW::state_table() const {
  std::vector<TensorEntry> out;
  for (const OptimParam& p : params_)
    for (TensorEntry& e : moment_table(p.name, p.param->shape(), false)) out.push_back(std::move(e));
  return out;
}

void StableAdamW::export_state(const TensorSink& put) {
  for (size_t i = 0; i < params_.size(); i++) moments_[i].export_to(put, params_[i].name, params_[i].param->shape());
}

}  // namespace llm
