// defines: Adopt
#include "engine/adopt.h"

#include <cmath>

#include "engine/backend.h"

namespace llm {

Adopt::Adopt(std::vector<OptimParam> params, AdamWConfig config) : params_(std::move(params)), config_(config) {
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
    backend(p.device()).adopt(p, grad, m_[i], v_[i], own);
  }
  return norm;
}

size_t Adopt::state_bytes() const {
  size_t bytes = 0;
  for (size_t i = 0; i < m_.size(); i++) bytes += m_[i].nbytes() + v_[i].nbytes();
  return bytes;
}

std::vector<std::pair<std::string, Tensor>> Adopt::export_state() {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < params_.size(); i++) {
    out.emplace_back(params_[i].name + ".exp_avg", m_[i]);
    out.emplace_back(params_[i].name + ".exp_avg_sq", v_[i]);
  }
  return out;
}

void Adopt::import_state(const StateLookup& find) {
  for (auto& [name, tensor] : export_state())
    tensor.copy_from(find(name, tensor.shape(), tensor.dtype(), 0, tensor.numel()).reshape(tensor.shape()));
}

}  // namespace llm
