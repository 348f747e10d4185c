// defines: Adopt
#include "engine/adopt.h"

#include <cmath>

#include "engine/backend.h"

namespace llm {

Adopt::Adopt(std::vector<OptimParam> params, AdamWConfig config) : Optimizer(config), params_(std::move(params)) {
  for (const OptimParam& p : params_) {
    m_.push_back(Tensor::zeros(p.param->shape(), DType::f32, p.param->device()));
    v_.push_back(Tensor::zeros(p.param->shape(), DType::f32, p.param->device()));
  }
}

double Adopt::step(float lr, double max_norm, bool update) {
  std::vector<Tensor*> tensors;
  for (const OptimParam& p : params_) tensors.push_back(p.param);
  const double norm = clip_grad_norm(tensors, max_norm);
  if (!update || !std::isfinite(norm)) return norm;
  // t_ counts the updates before this one: the reference clips at t_^0.25 and only fills v on
  // the first.
  const AdoptArgs args{lr, config_.beta1, config_.beta2, config_.eps, 0.0f,
                       std::pow(static_cast<float>(t_), 0.25f), t_ == 0};
  t_++;
  for (size_t i = 0; i < params_.size(); i++) {
    Tensor& p = *params_[i].param;
    Tensor grad = p.grad();
    if (!grad.defined()) continue;
    AdoptArgs own = args;
    own.weight_decay = params_[i].decay ? config_.weight_decay : 0.0f;
    own.lr = lr * params_[i].lr_scale;
    backend(p.device()).adopt(p, grad, m_[i], v_[i], own);
  }
  return norm;
}

size_t Adopt::state_bytes() const {
  size_t bytes = 0;
  for (size_t i = 0; i < m_.size(); i++) bytes += m_[i].nbytes() + v_[i].nbytes();
  return bytes;
}

std::vector<TensorEntry> Adopt::state_table() const {
  std::vector<TensorEntry> out;
  for (const OptimParam& p : params_)
    for (TensorEntry& e : moment_table(p.name, p.param->shape(), /*quantised=*/false)) out.push_back(std::move(e));
  return out;
}

void Adopt::export_state(const TensorSink& put) {
  for (size_t i = 0; i < params_.size(); i++) {
    const std::vector<TensorEntry> names = moment_table(params_[i].name, params_[i].param->shape(), false);
    put(names[0].name, m_[i]);  // exp_avg
    put(names[1].name, v_[i]);  // exp_avg_sq
  }
}

}  // namespace llm
