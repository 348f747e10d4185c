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
    // torchao's zeros: byte 0 with scale 0 (an fp8 byte 0x7F is NaN, which no scale zeroes)
    moments_.emplace_back(w.shape(), quantises(w.numel()), w.device(), DType::f32, code_bits(config.codes),
                          QuantZeros::byte_0);
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
                                ao_.codes};
    AdamWMoments& mo = moments_[i];
    backend(p.device()).torchao_adamw(p, grad, mo.m, mo.m_absmax, mo.v, mo.v_absmax, args);
  });
}

size_t TorchaoAdamW::state_bytes() const {
  size_t bytes = 0;
  for (const AdamWMoments& mo : moments_) bytes += mo.bytes();
  return bytes;
}

namespace {
// torchao's class name's suffix, and its codes in words.
const char* class_suffix(TorchaoCodes codes) {
  return codes == TorchaoCodes::fp8 ? "Fp8" : codes == TorchaoCodes::dynamic_4bit ? "4bit" : "8bit";
}
const char* codes_in_words(TorchaoCodes codes) {
  return codes == TorchaoCodes::fp8 ? "float8 e4m3" : codes == TorchaoCodes::dynamic_4bit ? "4-bit" : "u8";
}
}  // namespace

std::string TorchaoAdamW::describe() const {
  return std::string("torchao AdamW") + class_suffix(ao_.codes) + " (" + codes_in_words(ao_.codes) +
         " m and v with an f32 scale per " + std::to_string(kQuantBlock) +
         " elements for tensors of 4096 elements or more in whole blocks, f32 moments for the rest)";
}

std::string TorchaoAdamW::state_format() const {
  return "torchao AdamW " + torchao_codes_name(ao_.codes) + ", blocks of " + std::to_string(kQuantBlock);
}

std::vector<TensorEntry> TorchaoAdamW::state_table() const {
  std::vector<TensorEntry> out;
  for (size_t i = 0; i < params_.size(); i++)
    for (TensorEntry& e : moment_table(params_[i].name, params_[i].param->shape(), moments_[i].quantised(), DType::f32,
                                       code_bits(ao_.codes)))
      out.push_back(std::move(e));
  return out;
}

void TorchaoAdamW::export_state(const TensorSink& put) {
  for (size_t i = 0; i < params_.size(); i++) moments_[i].export_to(put, params_[i].name, params_[i].param->shape());
}

}  // namespace llm
