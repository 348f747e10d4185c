// defines: ScheduleFree
#include "engine/schedule_free.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "engine/backend.h"
#include "engine/check.h"

namespace llm {

namespace {

const char* kind_name(ScheduleFreeKind kind) {
  return kind == ScheduleFreeKind::adamw ? "AdamW" : kind == ScheduleFreeKind::radam ? "RAdam" : "SGD";
}

double parse_double(const std::map<std::string, std::string>& metadata, const std::string& key) {
  const auto it = metadata.find(key);
  if (it == metadata.end()) throw std::runtime_error("no metadata " + key + " (Schedule-Free's state)");
  char* end = nullptr;
  const double value = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0' || !std::isfinite(value))
    throw std::runtime_error("metadata " + key + ": expected a finite number, got " + it->second);
  return value;
}

}  // namespace

ScheduleFree::ScheduleFree(std::vector<OptimParam> params, const ScheduleFreeConfig& config)
    : Optimizer(AdamWConfig{float(config.beta1), float(config.beta2), float(config.eps), float(config.weight_decay)}),
      params_(std::move(params)),
      sf_(config),
      z_(params_.size()) {
  for (const OptimParam& p : params_) {
    LLM_CHECK(p.param->dtype() == DType::f32, "Schedule-Free: " + p.name + " is " + p.param->str() +
                                                  "; it updates f32 parameters");
    if (sf_.kind != ScheduleFreeKind::sgd) v_.push_back(Tensor::zeros(p.param->shape(), DType::f32, p.param->device()));
  }
}

void ScheduleFree::set_beta1(double beta1) {
  Optimizer::set_beta1(beta1);
  sf_.beta1 = beta1;
}

double ScheduleFree::scheduled_lr(double lr, bool& normalise) const {
  const double k = static_cast<double>(t_);
  normalise = sf_.kind == ScheduleFreeKind::adamw;
  if (sf_.kind != ScheduleFreeKind::radam) return t_ < sf_.warmup_steps ? lr * ((k + 1) / sf_.warmup_steps) : lr;
  // RAdam's rectification; before its variance estimate is tractable (rho_t <= 4) the reference's
  // silent_sgd_phase makes the step 0.
  const double beta2_t = std::pow(sf_.beta2, k + 1), rho_inf = 2 / (1 - sf_.beta2) - 1;
  const double rho_t = rho_inf - 2 * (k + 1) * beta2_t / (1 - beta2_t);
  normalise = rho_t > 4.0;
  if (!normalise) return 0.0;
  return lr * std::sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t));
}

double ScheduleFree::step(float lr, double max_norm, bool update) {
  const int64_t k = t_;  // the step count before each_update advances it
  bool normalise = false;
  const double step_lr = scheduled_lr(lr, normalise);
  // Kept only when the step updates: a skipped (non-finite) step changes no state.
  const double lr_max = std::max(step_lr, lr_max_);
  const double weight = std::pow(k + 1.0, sf_.r) * std::pow(lr_max, sf_.weight_lr_power);
  const double weight_sum = weight_sum_ + weight;
  const double averaging = weight_sum != 0.0 ? weight / weight_sum : 0.0;  // the reference's ZeroDivisionError
  const double norm = each_update(params_, max_norm, update, [&](size_t i, Tensor& p, const Tensor& grad, float clip) {
    if (!z_[i].defined()) z_[i] = p.clone();  // the reference's z starts where y is at its first gradient
    const double group_lr = step_lr * params_[i].lr_scale;
    const ScheduleFreeArgs args{float(averaging),
                                float(group_lr * (sf_.beta1 * (1 - averaging) - 1)),
                                float(group_lr),
                                float(sf_.beta2),
                                float(1 - sf_.beta2),
                                float(1 - std::pow(sf_.beta2, k + 1.0)),
                                float(sf_.eps),
                                params_[i].decay ? float(sf_.weight_decay) : 0.0f,
                                clip,
                                sf_.kind != ScheduleFreeKind::sgd,
                                normalise};
    backend(p.device()).schedule_free(p, grad, z_[i], v_.empty() ? nullptr : &v_[i], args);
  });
  if (t_ > k) {
    lr_max_ = lr_max;
    weight_sum_ = weight_sum;
  }
  return norm;
}

void ScheduleFree::set_training(bool training) {
  if (training == training_) return;
  // train(): y = x + (1 - beta1)(z - x); eval(): x = y + (1 - 1 / beta1)(z - y).
  const float weight = float(training ? 1 - sf_.beta1 : 1 - 1 / sf_.beta1);
  for (size_t i = 0; i < params_.size(); i++)
    if (z_[i].defined()) backend(z_[i].device()).lerp(*params_[i].param, z_[i], weight);
  training_ = training;
}

size_t ScheduleFree::state_bytes() const {
  size_t bytes = 0;
  for (size_t i = 0; i < params_.size(); i++)
    bytes += params_[i].param->nbytes() + (v_.empty() ? 0 : v_[i].nbytes());  // z, made at the first step
  return bytes;
}

std::string ScheduleFree::describe() const {
  return std::string("Schedule-Free ") + kind_name(sf_.kind) + (v_.empty() ? " (f32 z)" : " (f32 z and v)");
}

std::string ScheduleFree::state_format() const { return std::string("Schedule-Free ") + kind_name(sf_.kind); }

std::vector<TensorEntry> ScheduleFree::state_table() const {
  std::vector<TensorEntry> out;
  for (const OptimParam& p : params_) {
    out.push_back({p.name + ".z", DType::f32, p.param->shape()});
    if (!v_.empty()) out.push_back({p.name + ".exp_avg_sq", DType::f32, p.param->shape()});
  }
  return out;
}

void ScheduleFree::export_state(const TensorSink& put) {
  for (size_t i = 0; i < params_.size(); i++) {
    // A parameter that has had no gradient yet has z = y (the reference would clone it then).
    if (!z_[i].defined()) z_[i] = params_[i].param->clone();
    put(params_[i].name + ".z", z_[i]);
    if (!v_.empty()) put(params_[i].name + ".exp_avg_sq", v_[i]);
  }
}

std::map<std::string, std::string> ScheduleFree::scalar_state() const {
  char lr_max[32], weight_sum[32];
  std::snprintf(lr_max, sizeof lr_max, "%.17g", lr_max_);
  std::snprintf(weight_sum, sizeof weight_sum, "%.17g", weight_sum_);
  return {{"lr_max", lr_max}, {"weight_sum", weight_sum}, {"train_mode", training_ ? "true" : "false"}};
}

void ScheduleFree::restore_scalar_state(const std::map<std::string, std::string>& metadata) {
  lr_max_ = parse_double(metadata, "lr_max");
  weight_sum_ = parse_double(metadata, "weight_sum");
  const auto mode = metadata.find("train_mode");
  if (mode == metadata.end() || (mode->second != "true" && mode->second != "false"))
    throw std::runtime_error("metadata train_mode: expected true or false (Schedule-Free's state)");
  training_ = mode->second == "true";
}

}  // namespace llm
