// defines: Lion
#include "engine/lion.h"

#include <cmath>

#include "engine/backend.h"
#include "engine/check.h"
#include "engine/quant_map.h"

namespace llm {

namespace {

std::vector<TensorEntry> momentum_table(const std::string& param, const Shape& shape, bool quantised) {
  std::vector<TensorEntry> out;
  add_moment_entries(out, param + ".exp_avg", shape, quantised);
  return out;
}

}  // namespace

Lion::Lion(std::vector<OptimParam> params, AdamWConfig config, AdamWState state)
    : Optimizer(config), params_(std::move(params)), state_(state) {
  for (const OptimParam& p : params_) {
    const Tensor& w = *p.param;
    LLM_CHECK(w.dtype() == DType::f32, "Lion: " + p.name + " is " + w.str() + "; it updates f32 parameters");
    Momentum mo;
    if (quantises(state_, p)) {
      mo.m = zero_codes(w.shape(), true, w.device());
      mo.absmax = Tensor::zeros({blocks_of(w.numel())}, DType::f32, w.device());
    } else {
      mo.m = Tensor::zeros(w.shape(), DType::f32, w.device());
    }
    momenta_.push_back(std::move(mo));
  }
}

double Lion::step(float lr, double max_norm, bool update) {
  return each_update(params_, max_norm, update, [&](size_t i, Tensor& p, const Tensor& grad, float clip) {
    const LionArgs args{lr * params_[i].lr_scale, config_.beta1, config_.beta2,
                        params_[i].decay ? config_.weight_decay : 0.0f, clip};
    Momentum& mo = momenta_[i];
    if (mo.absmax.defined()) backend(p.device()).lion_8bit(p, grad, mo.m, mo.absmax, args);
    else backend(p.device()).lion(p, grad, mo.m, args);
  });
}

size_t Lion::state_bytes() const {
  size_t bytes = 0;
  for (const Momentum& mo : momenta_) bytes += mo.m.nbytes() + (mo.absmax.defined() ? mo.absmax.nbytes() : 0);
  return bytes;
}

std::string Lion::describe() const {
  if (state_ == AdamWState::f32) return "Lion (f32 momentum)";
  return "Lion 8-bit (bitsandbytes blockwise: u8 momentum, f32 absmax per " + std::to_string(kQuantBlock) +
         " elements; tensors under " + std::to_string(kMin8bitSize) + " elements and the token embedding keep f32)";
}

std::vector<TensorEntry> Lion::state_table() const {
  std::vector<TensorEntry> out;
  for (size_t i = 0; i < params_.size(); i++)
    for (TensorEntry& e : momentum_table(params_[i].name, params_[i].param->shape(), momenta_[i].absmax.defined()))
      out.push_back(std::move(e));
  return out;
}

void Lion::export_state(const TensorSink& put) {
  for (size_t i = 0; i < params_.size(); i++) {
    const Momentum& mo = momenta_[i];
    const std::vector<TensorEntry> names = momentum_table(params_[i].name, params_[i].param->shape(), mo.absmax.defined());
    put(names[0].name, mo.m);
    if (mo.absmax.defined()) put(names[1].name, mo.absmax);
  }
}

}  // namespace llm
