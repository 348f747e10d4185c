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
    momenta_.emplace_back(w.shape(), quantises(state_, p), /*is_signed=*/true, w.device());
  }
}

double Lion::step(float lr, double max_norm, bool update) {
  return each_update(params_, max_norm, update, [&](size_t i, Tensor& p, const Tensor& grad, float clip) {
    const LionArgs args{lr * params_[i].lr_scale, config_.beta1, config_.beta2,
                        params_[i].decay ? config_.weight_decay : 0.0f, clip};
    Moment& mo = momenta_[i];
    if (mo.quantised()) backend(p.device()).lion_8bit(p, grad, mo.values, mo.absmax, args);
    else backend(p.device()).lion(p, grad, mo.values, args);
  });
}

size_t Lion::state_bytes() const {
  size_t bytes = 0;
  for (const Moment& mo : momenta_) bytes += mo.bytes();
  return bytes;
}

std::string Lion::describe() const {
  return state_ == AdamWState::f32 ? "Lion (f32 momentum)" : blockwise_8bit_description("Lion", "momentum");
}

std::vector<TensorEntry> Lion::state_table() const {
  std::vector<TensorEntry> out;
  for (size_t i = 0; i < params_.size(); i++)
    for (TensorEntry& e : momentum_table(params_[i].name, params_[i].param->shape(), momenta_[i].quantised()))
      out.push_back(std::move(e));
  return out;
}

void Lion::export_state(const TensorSink& put) {
  for (size_t i = 0; i < params_.size(); i++) momenta_[i].export_to(put, params_[i].name + ".exp_avg");
}

}  // namespace llm
