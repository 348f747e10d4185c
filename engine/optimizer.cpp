// defines: AdamW (f32 or 8-bit blockwise state), adamw_args, clip_grad_norm, LrSchedule
#include "engine/optimizer.h"

#include <cmath>

#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"
#include "engine/quant_map.h"

namespace llm {

AdamWMoments::AdamWMoments(const Shape& shape, bool quantised, Device device) {
  if (!quantised) {
    m = Tensor::zeros(shape, DType::f32, device);
    v = Tensor::zeros(shape, DType::f32, device);
    return;
  }
  // Codes of 0 in each map (absmax 0 makes any code 0, but a checkpoint reads cleaner).
  const std::array<float, 256> signed_map = dynamic_quant_map(true);
  const int64_t blocks = (shape_numel(shape) + kQuantBlock - 1) / kQuantBlock;
  m = Tensor::full(shape, quantize_nearest(signed_map.data(), 0.0f), DType::u8, device);
  v = Tensor::zeros(shape, DType::u8, device);
  m_absmax = Tensor::zeros({blocks}, DType::f32, device);
  v_absmax = Tensor::zeros({blocks}, DType::f32, device);
}

size_t AdamWMoments::bytes() const {
  return m.nbytes() + v.nbytes() + (quantised() ? m_absmax.nbytes() + v_absmax.nbytes() : 0);
}

void AdamWMoments::update(Tensor& param, const Tensor& grad, const AdamWArgs& args) {
  Backend& be = backend(param.device());
  if (quantised()) be.adamw_8bit(param, grad, m, m_absmax, v, v_absmax, args);
  else be.adamw(param, grad, m, v, args);
}

AdamW::AdamW(std::vector<OptimParam> params, AdamWConfig config, AdamWState state)
    : params_(std::move(params)), config_(config), state_(state) {
  for (const OptimParam& p : params_) {
    const Tensor& w = *p.param;
    moments_.emplace_back(w.shape(), quantises(state_, w.numel()), w.device());
  }
  missed_.assign(params_.size(), 0);
}

AdamWArgs adamw_args(const AdamWConfig& config, float lr, int64_t t, bool decay) {
  return {lr, config.beta1, config.beta2, config.eps, decay ? config.weight_decay : 0.0f,
          lr / (1.0f - std::pow(config.beta1, static_cast<float>(t))),
          std::sqrt(1.0f - std::pow(config.beta2, static_cast<float>(t)))};
}

double AdamW::step(float lr, double max_norm, bool update) {
  std::vector<Tensor*> tensors;
  for (const OptimParam& p : params_) tensors.push_back(p.param);
  const double norm = clip_grad_norm(tensors, max_norm);
  if (!update || !std::isfinite(norm)) return norm;
  t_++;
  for (size_t i = 0; i < params_.size(); i++) {
    Tensor& p = *params_[i].param;
    Tensor grad = p.grad();
    if (!grad.defined()) {
      missed_[i]++;
      continue;
    }
    moments_[i].update(p, grad, adamw_args(config_, lr * params_[i].lr_scale, t_ - missed_[i], params_[i].decay));
  }
  return norm;
}

std::vector<int64_t> AdamW::missed_updates() const {
  for (int64_t m : missed_)
    if (m > 0) return missed_;
  return {};
}

void AdamW::set_missed_updates(const std::vector<int64_t>& missed) {
  if (missed.empty()) {
    missed_.assign(params_.size(), 0);
    return;
  }
  LLM_CHECK(missed.size() == params_.size(), "AdamW: " + std::to_string(missed.size()) +
                                                 " counts of missed updates for " + std::to_string(params_.size()) +
                                                 " parameters");
  for (int64_t m : missed) LLM_CHECK(m >= 0 && m <= t_, "AdamW: a parameter missed " + std::to_string(m) +
                                                            " of " + std::to_string(t_) + " updates");
  missed_ = missed;
}

void Optimizer::set_missed_updates(const std::vector<int64_t>& missed) {
  LLM_CHECK(missed.empty(), describe() + " keeps no per-parameter update counts");
}

std::string AdamW::describe() const { return adamw_name(state_); }

std::string adamw_name(AdamWState state) {
  if (state == AdamWState::f32) return "AdamW";
  return "AdamW 8-bit (bitsandbytes blockwise: u8 moments, f32 absmax per " +
         std::to_string(kQuantBlock) + " elements; tensors under " + std::to_string(kMin8bitSize) +
         " elements keep f32 moments)";
}

std::vector<TensorEntry> moment_table(const std::string& param, const Shape& shape, bool quantised) {
  if (!quantised) return {{param + ".exp_avg", DType::f32, shape}, {param + ".exp_avg_sq", DType::f32, shape}};
  const Shape blocks{blocks_of(shape_numel(shape))};
  return {{param + ".exp_avg.codes", DType::u8, shape}, {param + ".exp_avg.absmax", DType::f32, blocks},
          {param + ".exp_avg_sq.codes", DType::u8, shape}, {param + ".exp_avg_sq.absmax", DType::f32, blocks}};
}

std::vector<TensorEntry> AdamW::state_table() const {
  std::vector<TensorEntry> out;
  for (size_t i = 0; i < params_.size(); i++)
    for (TensorEntry& e : moment_table(params_[i].name, params_[i].param->shape(), moments_[i].quantised()))
      out.push_back(std::move(e));
  return out;
}

void AdamW::export_state(const TensorSink& put) {
  for (size_t i = 0; i < params_.size(); i++) {
    const AdamWMoments& mo = moments_[i];
    const std::vector<TensorEntry> names = moment_table(params_[i].name, params_[i].param->shape(), mo.quantised());
    const Tensor* f32[] = {&mo.m, &mo.v};
    const Tensor* q8[] = {&mo.m, &mo.m_absmax, &mo.v, &mo.v_absmax};  // moment_table's order
    const Tensor* const* values = mo.quantised() ? q8 : f32;
    for (size_t k = 0; k < names.size(); k++) put(names[k].name, *values[k]);
  }
}

void Optimizer::import_state(const StateLookup& find) {
  export_state([&find](const std::string& name, const Tensor& value) {
    Tensor dst = value;  // the moment itself: a Tensor shares its storage
    dst.copy_from(find(name, dst.shape(), dst.dtype(), 0, dst.numel()).reshape(dst.shape()));
  });
}

size_t AdamW::state_bytes() const {
  size_t bytes = 0;
  for (const AdamWMoments& mo : moments_) bytes += mo.bytes();
  return bytes;
}

// The norm is read by the host once a step (clipping and the trainer's non-finite check need
// it there); summing on the device first keeps that to one wait, not one per parameter.
double clip_grad_norm(const std::vector<Tensor*>& params, double max_norm) {
  std::vector<Tensor> grads;
  for (Tensor* p : params)
    if (p->grad().defined()) grads.push_back(p->grad());
  const double norm = std::sqrt(sum_squares(grads));
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
  if (restart_steps <= 0) return inner_lr(step);
  const int64_t at = step + 1;  // the wrapper's own initial step
  double scale = 1.0;
  if (at >= restart_steps - restart_anneal) {
    const int64_t progress = at % restart_steps;
    double t = 1.0;
    if (progress < restart_warmup)
      t = std::min(1.0, static_cast<double>(progress) / static_cast<double>(restart_warmup));
    else if (progress > restart_steps - restart_anneal)
      t = std::min(1.0, static_cast<double>(restart_steps - progress) / static_cast<double>(restart_anneal));
    scale = t * (1.0 - restart_min_scale) + restart_min_scale;
  }
  return inner_lr(at) * scale;
}

double LrSchedule::inner_lr(int64_t step) const {
  if (kind == "constant") return base_lr;  // HF's constant takes no warmup; constant_with_warmup does
  if (kind == "cosine_warmup_with_min_lr") return cosine_warmup_with_min_lr(step);
  if (kind == "warmup_stable_decay") return warmup_stable_decay(step);
  if (kind == "rex") return rex(step);
  const double warm = static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  if (step < warmup_steps) return base_lr * (quadratic_warmup ? warm * warm : warm);
  // As Axolotl chooses it: a cosine with both ratios set decays over the first int(ratio x total)
  // steps, then holds at the floor; quadratic warmup takes neither.
  const bool floored = kind == "cosine" && !quadratic_warmup;
  const bool held = floored && constant_lr_ratio > 0 && min_lr_ratio > 0;
  const int64_t end = held ? static_cast<int64_t>(static_cast<double>(total_steps) * constant_lr_ratio) : total_steps;
  const double span = static_cast<double>(std::max<int64_t>(1, end - warmup_steps));
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
  if (kind == "linear") return base_lr * std::max(0.0, 1.0 - progress);
  if (kind == "constant_with_warmup") return base_lr;
  if (kind == "polynomial") {
    // transformers' get_polynomial_decay_schedule_with_warmup (a base rate at or under lr_end is
    // an error there, a constant lr_end here).
    const double end_lr = lr_end >= 0 ? lr_end : 1e-7, exponent = power >= 0 ? power : 1.0;
    return base_lr <= end_lr ? base_lr : end_lr + (base_lr - end_lr) * std::pow(1.0 - progress, exponent);
  }
  if (kind == "inverse_sqrt") {
    const double scale = timescale > 0 ? timescale : warmup_steps > 0 ? static_cast<double>(warmup_steps) : 10000.0;
    return base_lr / std::sqrt((static_cast<double>(step - warmup_steps) + scale) / scale);
  }
  if (kind == "cosine_with_restarts") {  // each of num_cycles cycles a half cosine from the top
    if (static_cast<double>(step - warmup_steps) >= span) return 0.0;
    const double cycles = num_cycles >= 0 ? num_cycles : 1.0;
    return base_lr * std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * std::fmod(cycles * progress, 1.0))));
  }
  // Axolotl's own cosines (a floor, quadratic warmup) take no num_cycles: one half-wave.
  const bool hf_floor = kind == "cosine_with_min_lr";
  const double cycles = num_cycles >= 0 && !quadratic_warmup && (min_lr_ratio == 0 || hf_floor) ? num_cycles : 0.5;
  const double cosine = std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * cycles * 2.0 * progress)));
  const double floor = floored || hf_floor ? min_lr_ratio : 0.0;
  return base_lr * (floor + (1.0 - floor) * cosine);
}

// transformers' _get_cosine_with_min_lr_schedule_with_warmup_lr_rate_lambda, in its doubles.
double LrSchedule::cosine_warmup_with_min_lr(int64_t step) const {
  const double s = static_cast<double>(step), w = static_cast<double>(warmup_steps);
  if (s < w)
    return base_lr * (warmup_lr_rate < 0 ? (s + 1.0) / std::max(1.0, w)
                                         : warmup_lr_rate + (1.0 - warmup_lr_rate) * s / std::max(1.0, w - 1.0));
  const double progress = (s - w + 1.0) / std::max(1.0, static_cast<double>(total_steps) - w);
  const double cycles = num_cycles >= 0 ? num_cycles : 0.5;
  return lifted(0.5 * (1.0 + std::cos(M_PI * cycles * 2.0 * progress)));
}

// HF's floor under a schedule's factor: factor x (1 - min_lr_ratio) + min_lr_ratio, never below 0.
double LrSchedule::lifted(double factor) const {
  return base_lr * std::max(0.0, factor * (1.0 - min_lr_ratio) + min_lr_ratio);
}

// transformers' _get_wsd_scheduler_lambda: each phase's shape over its progress p, rising in
// warmup (linear p, cosine, 1 - sqrt(1 - p)) and falling in decay (1 - p, the cosine, 1 - sqrt p),
// lifted onto the floor.
double LrSchedule::warmup_stable_decay(int64_t step) const {
  if (step < warmup_steps) {
    const double p = static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
    return lifted(warmup_type == "linear"   ? p
                  : warmup_type == "cosine" ? 0.5 * (1.0 - std::cos(M_PI * p))
                                            : 1.0 - std::sqrt(1.0 - p));
  }
  const int64_t stable = num_stable_steps >= 0 ? num_stable_steps : total_steps - warmup_steps - num_decay_steps;
  if (step < warmup_steps + stable) return base_lr;
  if (step < warmup_steps + stable + num_decay_steps) {
    const double p = static_cast<double>(step - warmup_steps - stable) / static_cast<double>(std::max<int64_t>(1, num_decay_steps));
    const double cycles = num_cycles >= 0 ? num_cycles : 0.5;
    return lifted(decay_type == "linear"   ? 1.0 - p
                  : decay_type == "cosine" ? 0.5 * (1.0 + std::cos(M_PI * cycles * 2.0 * p))
                                           : 1.0 - std::sqrt(p));
  }
  return base_lr * min_lr_ratio;
}

// Axolotl's RexLR, which takes its initial step when built: update k runs at its step k + 1, the
// warmup reaching learning_rate at step `warmup_steps`, then z = the share of the steps after the
// warmup still to come, and past them the floor.
double LrSchedule::rex(int64_t step) const {
  const int64_t at = step + 1;
  if (at <= warmup_steps) return base_lr * static_cast<double>(at) / static_cast<double>(warmup_steps);
  const int64_t after = at - warmup_steps, remaining = total_steps - warmup_steps;
  if (after >= remaining || remaining <= 0) return base_lr * min_lr_ratio;
  const double z = static_cast<double>(remaining - after % remaining) / static_cast<double>(remaining);
  return base_lr * (min_lr_ratio + (1.0 - min_lr_ratio) * (z / (0.1 + 0.9 * z)));
}

}  // namespace llm
