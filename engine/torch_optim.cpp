// defines: TorchOptimizer
#include "engine/torch_optim.h"

#include "engine/backend.h"
#include "engine/check.h"

namespace llm {

TorchOptimizer::TorchOptimizer(std::vector<OptimParam> params, const TorchOptimConfig& config)
    : Optimizer(AdamWConfig{0.0f, 0.0f, float(config.eps), float(config.weight_decay)}),
      params_(std::move(params)),
      torch_(config) {
  const std::array<std::string, 3> names = torch_optim_state_names(torch_);
  for (const OptimParam& p : params_) {
    LLM_CHECK(p.param->dtype() == DType::f32, "torch.optim: " + p.name + " is " + p.param->str() + "; it updates f32 parameters");
    std::array<Tensor, 3> s;
    Tensor absmax;
    if (quantised(p)) {
      Moment square_avg(p.param->shape(), true, /*is_signed=*/true, p.param->device());
      s[0] = square_avg.values;
      absmax = square_avg.absmax;
    }
    for (int k = 0; k < 3; k++)
      if (!names[k].empty() && !s[k].defined()) s[k] = Tensor::zeros(p.param->shape(), DType::f32, p.param->device());
    state_.push_back(std::move(s));
    absmax_.push_back(std::move(absmax));
  }
  missed_.assign(params_.size(), 0);
}

bool TorchOptimizer::quantised(const OptimParam& p) const {
  return torch_.blockwise_8bit && quantises(AdamWState::blockwise_8bit, p);
}

std::array<std::string, 3> torch_optim_state_names(const TorchOptimConfig& t) {
  switch (t.kind) {
    case TorchOptimKind::sgd:
      return {t.momentum != 0 || t.cycled_momentum ? "momentum_buffer" : "", "", ""};
    case TorchOptimKind::adagrad:
      return {"sum", "", ""};
    case TorchOptimKind::rmsprop:
      return {"square_avg", t.momentum > 0 || t.cycled_momentum ? "momentum_buffer" : "", t.centered ? "grad_avg" : ""};
  }
  return {};
}

void TorchOptimizer::set_beta1(double momentum) {
  LLM_CHECK(torch_.cycled_momentum, "torch.optim: its momentum is set only by one_cycle's cycle");
  torch_.momentum = momentum;
}

double TorchOptimizer::step(float lr, double max_norm, bool update) {
  return each_update(params_, max_norm, update, [&](size_t i, Tensor& p, const Tensor& grad, float clip) {
    const int64_t t = t_ - missed_[i];  // this parameter's updates, this one included
    const double group_lr = double(lr) * params_[i].lr_scale;
    TorchOptimArgs a;
    a.kind = torch_.kind;
    // Adagrad's clr = lr / (1 + (step - 1) lr_decay), in Python floats.
    a.lr = float(torch_.kind == TorchOptimKind::adagrad ? group_lr / (1 + double(t - 1) * torch_.lr_decay) : group_lr);
    a.weight_decay = params_[i].decay ? float(torch_.weight_decay) : 0.0f;
    a.momentum = float(torch_.momentum);
    a.one_minus_dampening = float(1 - torch_.dampening);
    a.nesterov = torch_.nesterov;
    a.first_step = t == 1;
    a.alpha = float(torch_.alpha);
    a.one_minus_alpha = float(1 - torch_.alpha);
    a.eps = float(torch_.eps);
    a.centered = torch_.centered;
    a.grad_scale = clip;
    if (absmax_[i].defined()) {
      backend(p.device()).rmsprop_8bit(p, grad, state_[i][0], absmax_[i], a);
      return;
    }
    std::array<Tensor*, 3> s{};
    for (int k = 0; k < 3; k++)
      if (state_[i][k].defined()) s[k] = &state_[i][k];
    backend(p.device()).torch_optim(p, grad, s, a);
  });
}

size_t TorchOptimizer::state_bytes() const {
  size_t bytes = 0;
  for (size_t i = 0; i < state_.size(); i++) {
    for (const Tensor& t : state_[i])
      if (t.defined()) bytes += t.nbytes();
    if (absmax_[i].defined()) bytes += absmax_[i].nbytes();
  }
  return bytes;
}

std::string TorchOptimizer::state_format() const {
  if (torch_.blockwise_8bit) return state_format_of("RMSprop", AdamWState::blockwise_8bit);
  return torch_.kind == TorchOptimKind::sgd ? "SGD" : torch_.kind == TorchOptimKind::adagrad ? "Adagrad" : "RMSprop";
}

std::string TorchOptimizer::describe() const {
  std::string kept;
  for (const std::string& name : torch_optim_state_names(torch_))
    if (!name.empty()) kept += (kept.empty() ? "" : ", ") + name;
  if (torch_.blockwise_8bit) return blockwise_8bit_description("bitsandbytes RMSprop", kept);
  return "torch.optim " + state_format() + " (" + (kept.empty() ? "no state" : "f32 " + kept) + ")";
}

std::vector<TensorEntry> TorchOptimizer::state_table() const {
  const std::array<std::string, 3> names = torch_optim_state_names(torch_);
  std::vector<TensorEntry> out;
  for (const OptimParam& p : params_)
    for (int k = 0; k < 3; k++)
      if (!names[k].empty()) add_moment_entries(out, p.name + "." + names[k], p.param->shape(), k == 0 && quantised(p));
  return out;
}

void TorchOptimizer::export_state(const TensorSink& put) {
  const std::array<std::string, 3> names = torch_optim_state_names(torch_);
  for (size_t i = 0; i < params_.size(); i++)
    for (int k = 0; k < 3; k++) {
      if (names[k].empty()) continue;
      const std::string name = params_[i].name + "." + names[k];
      if (k == 0 && absmax_[i].defined()) {
        put(name + ".codes", state_[i][0]);
        put(name + ".absmax", absmax_[i]);
      } else {
        put(name, state_[i][k]);
      }
    }
}

}  // namespace llm
