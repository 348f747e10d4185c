// defines: AdEMAMix
#include "engine/ademamix.h"

#include <algorithm>
#include <cmath>

#include "engine/backend.h"
#include "engine/check.h"
#include "engine/quant_map.h"

namespace llm {

namespace {

constexpr const char* kMomentNames[3] = {".exp_avg", ".exp_avg_slow", ".exp_avg_sq"};
constexpr bool kSigned[3] = {true, true, false};

std::vector<TensorEntry> moment_entries(const std::string& param, const Shape& shape, bool quantised) {
  std::vector<TensorEntry> out;
  for (const char* moment : kMomentNames) add_moment_entries(out, param + moment, shape, quantised);
  return out;
}

// bitsandbytes' schedules of alpha (linear up to it over t_alpha updates) and beta3 (from beta1
// up to it over t_beta3, linear in 1 / log beta), at update `t` (from 1).
float alpha_at(const AdemamixConfig& mix, int64_t t) {
  if (mix.t_alpha <= 0) return mix.alpha;
  return static_cast<float>(std::min(double(t) * mix.alpha / double(mix.t_alpha), double(mix.alpha)));
}

float beta3_at(const AdemamixConfig& mix, float beta1, int64_t t) {
  if (mix.t_beta3 <= 0) return mix.beta3;
  const double ln1 = std::log(double(beta1)), ln3 = std::log(double(mix.beta3)), s = double(t) / double(mix.t_beta3);
  return static_cast<float>(std::min(std::exp(ln1 * ln3 / ((1 - s) * ln3 + s * ln1)), double(mix.beta3)));
}

}  // namespace

AdEMAMix::AdEMAMix(std::vector<OptimParam> params, AdamWConfig config, AdemamixConfig mix, AdamWState state)
    : Optimizer(config), params_(std::move(params)), mix_(mix), state_(state) {
  for (const OptimParam& p : params_) {
    const Tensor& w = *p.param;
    LLM_CHECK(w.dtype() == DType::f32, "AdEMAMix: " + p.name + " is " + w.str() + "; it updates f32 parameters");
    std::vector<Moment> m;
    for (bool is_signed : kSigned) m.emplace_back(w.shape(), quantises(state_, p), is_signed, w.device());
    moments_.push_back(std::move(m));
  }
  missed_.assign(params_.size(), 0);
}

double AdEMAMix::step(float lr, double max_norm, bool update) {
  return each_update(params_, max_norm, update, [&](size_t i, Tensor& p, const Tensor& grad, float clip) {
    const int64_t t = t_ - missed_[i];
    AdemamixArgs a;
    a.lr = lr * params_[i].lr_scale;
    a.beta1 = config_.beta1;
    a.beta2 = config_.beta2;
    a.beta3 = beta3_at(mix_, config_.beta1, t);
    a.alpha = alpha_at(mix_, t);
    a.eps = config_.eps;
    a.weight_decay = params_[i].decay ? config_.weight_decay : 0.0f;
    a.bias1 = static_cast<float>(1.0 - std::pow(double(config_.beta1), double(t)));
    a.bias2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(double(config_.beta2), double(t))));
    a.grad_scale = clip;
    std::vector<Moment>& m = moments_[i];
    Backend& be = backend(p.device());
    if (m[0].quantised())
      be.ademamix_8bit(p, grad, m[0].values, m[0].absmax, m[1].values, m[1].absmax, m[2].values, m[2].absmax, a);
    else
      be.ademamix(p, grad, m[0].values, m[1].values, m[2].values, a);
  });
}

size_t AdEMAMix::state_bytes() const {
  size_t bytes = 0;
  for (const std::vector<Moment>& m : moments_)
    for (const Moment& k : m) bytes += k.bytes();
  return bytes;
}

std::string AdEMAMix::describe() const {
  return state_ == AdamWState::f32 ? "AdEMAMix (f32 moments)" : blockwise_8bit_description("AdEMAMix", "moments");
}

std::vector<TensorEntry> AdEMAMix::state_table() const {
  std::vector<TensorEntry> out;
  for (size_t i = 0; i < params_.size(); i++)
    for (TensorEntry& e : moment_entries(params_[i].name, params_[i].param->shape(), moments_[i][0].quantised()))
      out.push_back(std::move(e));
  return out;
}

void AdEMAMix::export_state(const TensorSink& put) {
  for (size_t i = 0; i < params_.size(); i++)
    for (int k = 0; k < 3; k++) moments_[i][k].export_to(put, params_[i].name + kMomentNames[k]);
}

}  // namespace llm
