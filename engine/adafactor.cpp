// defines: Adafactor
#include "engine/adafactor.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

namespace {

// A matrix (R, C) is factored; transformers factors any tensor of two or more dimensions over
// its last two, and every trained matrix here is 2-D.
bool factored(const Shape& shape) { return shape.size() >= 2; }

}  // namespace

std::vector<TensorEntry> adafactor_state_table(const std::string& param, const Shape& shape) {
  if (!factored(shape)) return {{param + ".exp_avg_sq", DType::f32, shape}};
  const int64_t C = shape.back(), R = shape_numel(shape) / C;
  return {{param + ".exp_avg_sq_row", DType::f32, {R}}, {param + ".exp_avg_sq_col", DType::f32, {C}}};
}

AdafactorArgs adafactor_args(double lr, int64_t step, double weight_decay) {
  const double beta2t = 1.0 - std::pow(double(step), -0.8);
  AdafactorArgs args;
  args.lr = static_cast<float>(lr);
  args.beta2t = static_cast<float>(beta2t);
  args.one_minus_beta2t = static_cast<float>(1.0 - beta2t);
  args.decay_step = weight_decay != 0 ? static_cast<float>(-weight_decay * lr) : 0.0f;
  return args;
}

Adafactor::Adafactor(std::vector<OptimParam> params, AdamWConfig config, bool adalomo)
    : Optimizer(config), params_(std::move(params)), adalomo_(adalomo) {
  for (const OptimParam& p : params_) {
    const Tensor& w = *p.param;
    LLM_CHECK(w.dtype() == DType::f32, "Adafactor: " + p.name + " is " + w.str() + "; it updates f32 parameters");
    LLM_CHECK(!factored(w.shape()) || w.shape().size() == 2, "Adafactor: " + p.name + " is " + w.str() +
                                                                 "; it factors vectors and matrices");
    Averages a;
    for (const TensorEntry& e : adafactor_state_table(p.name, w.shape()))
      (a.row.defined() ? a.col : a.row) = Tensor::zeros(e.shape, DType::f32, w.device());
    averages_.push_back(std::move(a));
  }
  missed_.assign(params_.size(), 0);
}

double Adafactor::step(float lr, double max_norm, bool update) {
  if (adalomo_) {  // its passes made the updates
    t_++;
    return take_backward_norm();
  }
  return each_update(params_, max_norm, update, [&](size_t i, Tensor& p, const Tensor& grad, float clip) {
    AdafactorArgs args = adafactor_args(double(lr) * params_[i].lr_scale, t_ - missed_[i],
                                        params_[i].decay ? double(config_.weight_decay) : 0.0);
    args.grad_scale = clip;
    backend(p.device()).adafactor(p, grad, averages_[i].row, averages_[i].col, args);
  });
}

// As lomo_optim's AdaLomo hook: the step count (its decay rate) advances once a pass for every
// parameter; the rate is scaled by the parameter's RMS in f32, as its torch.norm and product.
LeafReadyHook Adafactor::pass_updates(float lr) {
  if (!adalomo_) return {};
  passes_++;
  return updates_as_gradients_complete(params_, [this, lr](size_t i, Tensor& p, const Tensor& grad) {
    const float rms = static_cast<float>(std::sqrt(sum_squares(p)) / std::sqrt(static_cast<double>(p.numel())));
    const AdafactorArgs args = adafactor_args(lr * std::max(1e-3f, rms), passes_, 0.0);
    backend(p.device()).adafactor(p, grad, averages_[i].row, averages_[i].col, args);
  });
}

std::map<std::string, std::string> Adafactor::scalar_state() const {
  if (!adalomo_) return {};
  return {{"adalomo_passes", std::to_string(passes_)}};
}

void Adafactor::restore_scalar_state(const std::map<std::string, std::string>& metadata) {
  if (!adalomo_) return;
  const auto it = metadata.find("adalomo_passes");
  char* end = nullptr;
  errno = 0;
  const long long passes = it == metadata.end() ? -1 : std::strtoll(it->second.c_str(), &end, 10);
  if (passes < t_ || end == nullptr || *end != '\0' || errno == ERANGE)
    throw std::runtime_error("metadata adalomo_passes: expected an integer of at least the steps taken (" +
                             std::to_string(t_) + "; AdaLomo's count of backward passes)");
  passes_ = passes;
}

std::string Adafactor::describe() const {
  return adalomo_ ? "AdaLomo (lomo_optim's, as transformers builds it): Adafactor's factored f32 second moments, each "
                   "parameter updated in backward as its gradient completes (every micro-batch's pass a step), its rate "
                   "times max(1e-3, its RMS), its gradient then dropped; no decay, no clipping"
                 : "Adafactor (f32 factored second moments)";
}

size_t Adafactor::state_bytes() const {
  size_t bytes = 0;
  for (const Averages& a : averages_) bytes += a.row.nbytes() + (a.col.defined() ? a.col.nbytes() : 0);
  return bytes;
}

std::vector<TensorEntry> Adafactor::state_table() const {
  std::vector<TensorEntry> out;
  for (const OptimParam& p : params_)
    for (TensorEntry& e : adafactor_state_table(p.name, p.param->shape())) out.push_back(std::move(e));
  return out;
}

void Adafactor::export_state(const TensorSink& put) {
  for (size_t i = 0; i < params_.size(); i++) {
    const std::vector<TensorEntry> names = adafactor_state_table(params_[i].name, params_[i].param->shape());
    put(names[0].name, averages_[i].row);
    if (averages_[i].col.defined()) put(names[1].name, averages_[i].col);
  }
}

}  // namespace llm
