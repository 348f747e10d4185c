// defines: AdamW, AdamWBiasCorrection, clip_grad_norm, LrSchedule
#include "engine/optimizer.h"

#include <cmath>

#include "engine/backend.h"
#include "engine/ops.h"

namespace llm {

AdamW::AdamW(std::vector<OptimParam> params, AdamWConfig config)
    : params_(std::move(params)), config_(config) {
  for (const OptimParam& p : params_) {
    m_.push_back(Tensor::zeros(p.param->shape(), DType::f32, p.param->device()));
    v_.push_back(Tensor::zeros(p.param->shape(), DType::f32, p.param->device()));
  }
}

AdamWBiasCorrection::AdamWBiasCorrection(const AdamWConfig& config, float lr, int64_t t)
    : step_size(lr / (1.0f - std::pow(config.beta1, static_cast<float>(t)))),
      bias2_sqrt(std::sqrt(1.0f - std::pow(config.beta2, static_cast<float>(t)))) {}

double AdamW::step(float lr, double max_norm, bool update) {
  std::vector<Tensor*> tensors;
  for (const OptimParam& p : params_) tensors.push_back(p.param);
  const double norm = clip_grad_norm(tensors, max_norm);
  if (!update || !std::isfinite(norm)) return norm;
  t_++;
  const AdamWBiasCorrection bias(config_, lr, t_);
  for (size_t i = 0; i < params_.size(); i++) {
    Tensor& p = *params_[i].param;
    Tensor grad = p.grad();
    if (!grad.defined()) continue;
    float wd = params_[i].decay ? config_.weight_decay : 0.0f;
    backend(p.device()).adamw(p, grad, m_[i], v_[i], lr, config_.beta1, config_.beta2,
                              config_.eps, wd, bias.step_size, bias.bias2_sqrt);
  }
  return norm;
}

std::vector<std::pair<std::string, Tensor>> AdamW::export_state() {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < params_.size(); i++) {
    out.emplace_back(params_[i].name + ".exp_avg", m_[i]);
    out.emplace_back(params_[i].name + ".exp_avg_sq", v_[i]);
  }
  return out;
}

void AdamW::import_state(const StateLookup& find) {
  for (auto& [name, tensor] : export_state()) tensor.copy_from(find(name, tensor.shape()));
}

size_t AdamW::state_bytes() const {
  size_t bytes = 0;
  for (size_t i = 0; i < m_.size(); i++) bytes += m_[i].nbytes() + v_[i].nbytes();
  return bytes;
}

double clip_grad_norm(const std::vector<Tensor*>& params, double max_norm) {
  double total = 0.0;
  for (Tensor* p : params)
    if (p->grad().defined()) total += sum_squares(p->grad());
  const double norm = std::sqrt(total);
  if (max_norm > 0.0 && std::isfinite(norm) && norm > max_norm) {
    const float coef = static_cast<float>(max_norm / (norm + 1e-6));
    for (Tensor* p : params) {
      Tensor g = p->grad();
      if (g.defined()) scale_(g, coef);
    }
  }
  return norm;
}

double LrSchedule::lr(int64_t step) const {
  if (step < warmup_steps) return base_lr * static_cast<double>(step) / static_cast<double>(warmup_steps);
  const double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
  if (kind == "linear") return base_lr * std::max(0.0, 1.0 - progress);
  if (kind == "constant") return base_lr;
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return base_lr * (min_lr_ratio + (1.0 - min_lr_ratio) * cosine);
}

}  // namespace llm
