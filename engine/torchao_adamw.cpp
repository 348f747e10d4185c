// defines: TorchaoAdamW
#include "engine/torchao_adamw.h"

#include <cmath>

#include "engine/backend.h"
#include "engine/check.h"

namespace llm {

TorchaoAdamW::TorchaoAdamW(std::vector<OptimParam> params, const TorchaoAdamWConfig& config)
    : Optimizer(AdamWConfig{float(config.beta1), float(config.beta2), float(config.eps), float(config.weight_decay)}),
      params_(std::move(params)),
      ao_(config) {
  for (const OptimParam& p : params_) {
    const Tensor& w = *p.param;
    LLM_CHECK(w.dtype() == DType::f32, "torchao AdamW: " + p.name + " is " + w.str() + "; it updates f32 parameters");
    moments_.emplace_back(w.shape(), quantises(w.numel()), w.device(), DType::f32, config.code_bits);
  }
  missed_.assign(params_.size(), 0);
}

void TorchaoAdamW::set_beta1(double beta1) {
  Optimizer::set_beta1(beta1);
  ao_.beta1 = beta1;
}

double TorchaoAdamW::step(float lr, double max_norm, bool update) {
  return each_update(params_, max_norm, update, [&](size_t i, Tensor& p, const Tensor& grad, float clip) {
    const float t = static_cast<float>(t_ - missed_[i]), group_lr = lr * params_[i].lr_scale;
    const float decay = params_[i].decay ? float(ao_.weight_decay) : 0.0f;
    const TorchaoAdamWArgs args{group_lr,
                                group_lr * decay,
                                lerp_weight(1 - ao_.beta1),
                                lerp_weight(1 - ao_.beta2),
                                1.0f - std::pow(float(ao_.beta1), t),
                                std::sqrt(1.0f - std::pow(float(ao_.beta2), t)),
                                float(ao_.eps),
                                clip,
                                ao_.code_bits};
    AdamWMoments& mo = moments_[i];
    backend(p.device()).torchao_adamw(p, grad, mo.m, mo.m_absmax, mo.v, mo.v_absmax, args);
  });
}

size_t TorchaoAdamW::state_bytes() const {
  size_t bytes = 0;
  for (const AdamWMoments& mo : moments_) bytes += mo.bytes();
  return bytes;
}

std::string TorchaoAdamW::describe() const {
  const std::string bits = std::to_string(ao_.code_bits);
  return "torchao AdamW" + bits + "bit (" + (ao_.code_bits == 8 ? "u8" : "4-bit") + " m and v with an f32 scale per " +
         std::to_string(kQuantBlock) + " elements for tensors of 4096 elements or more in whole blocks, f32 moments for the rest)";
}

std::string TorchaoAdamW::state_format() const {
  return "torchao AdamW " + std::to_string(ao_.code_bits) + "-bit, blocks of " + std::to_string(kQuantBlock);
}

std::vector<TensorEntry> TorchaoAdamW::state_table() const {
  std::vector<TensorEntry> out;
  for (size_t i = 0; i < params_.size(); i++)
    for (TensorEntry& e : moment_table(params_[i].name, params_[i].param->shape(), moments_[i].quantised(), DType::f32,
                                       ao_.code_bits))
      out.push_back(std::move(e));
  return out;
}

void TorchaoAdamW::export_state(const TensorSink& put) {
  for (size_t i = 0; i < params_.size(); i++) moments_[i].export_to(put, params_[i].name, params_[i].param->shape());
}

}  // namespace llm
