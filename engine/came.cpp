// defines: Came
#include "engine/came.h"

#include "engine/check.h"

namespace llm {

namespace {

bool factored(const Shape& shape) { return shape.size() >= 2; }

// A parameter's state tensors in state_table's order (came_pytorch's names).
std::vector<TensorEntry> state_entries(const std::string& param, const Shape& shape) {
  std::vector<TensorEntry> out{{param + ".exp_avg", DType::f32, shape}};
  if (!factored(shape)) {
    out.push_back({param + ".exp_avg_sq", DType::f32, shape});
    return out;
  }
  const int64_t C = shape.back(), R = shape_numel(shape) / C;
  for (const char* moment : {"sq", "res"}) {
    out.push_back({param + ".exp_avg_" + moment + "_row", DType::f32, {R}});
    out.push_back({param + ".exp_avg_" + moment + "_col", DType::f32, {C}});
  }
  return out;
}

}  // namespace

Came::Came(std::vector<OptimParam> params, AdamWConfig config, CameConfig came)
    : Optimizer(config), params_(std::move(params)), came_(came) {
  for (const OptimParam& p : params_) {
    const Tensor& w = *p.param;
    LLM_CHECK(w.dtype() == DType::f32, "CAME: " + p.name + " is " + w.str() + "; it updates f32 parameters");
    LLM_CHECK(w.shape().size() <= 2, "CAME: " + p.name + " is " + w.str() + "; it factors vectors and matrices");
    State s;
    const std::vector<TensorEntry> entries = state_entries(p.name, w.shape());
    const std::vector<Tensor*> slots = tensors_of(s, factored(w.shape()));
    for (size_t k = 0; k < entries.size(); k++) *slots[k] = Tensor::zeros(entries[k].shape, DType::f32, w.device());
    states_.push_back(std::move(s));
  }
}

void Came::set_beta1(double beta1) {
  Optimizer::set_beta1(beta1);
  came_.beta1 = beta1;
}

double Came::step(float lr, double max_norm, bool update) {
  return each_update(params_, max_norm, update, [&](size_t i, Tensor& p, const Tensor& grad, float clip) {
    // came_pytorch's constants: Python floats (doubles) that torch rounds to f32 in its kernels.
    const double own_lr = double(lr) * params_[i].lr_scale;
    CameArgs args;
    args.second.lr = static_cast<float>(own_lr);
    args.second.beta2t = static_cast<float>(came_.beta2);
    args.second.one_minus_beta2t = static_cast<float>(1.0 - came_.beta2);
    args.second.eps1 = config_.eps;
    args.second.decay_step = params_[i].decay ? static_cast<float>(-double(config_.weight_decay) * own_lr) : 0.0f;
    args.second.grad_scale = clip;
    args.second.clip_threshold = static_cast<float>(came_.clip_threshold);
    args.instability.beta2t = static_cast<float>(came_.beta3);
    args.instability.one_minus_beta2t = static_cast<float>(1.0 - came_.beta3);
    args.beta1 = static_cast<float>(came_.beta1);
    args.one_minus_beta1 = static_cast<float>(1.0 - came_.beta1);
    args.eps2 = static_cast<float>(came_.eps2);
    State& s = states_[i];
    backend(p.device()).came(p, grad, s.m, s.second, s.instability, args);
  });
}

std::vector<Tensor*> Came::tensors_of(State& s, bool factored_shape) {
  if (!factored_shape) return {&s.m, &s.second.row};
  return {&s.m, &s.second.row, &s.second.col, &s.instability.row, &s.instability.col};
}

size_t Came::state_bytes() const {
  size_t bytes = 0;
  for (const State& s : states_)
    for (const Tensor* t : {&s.m, &s.second.row, &s.second.col, &s.instability.row, &s.instability.col})
      if (t->defined()) bytes += t->nbytes();
  return bytes;
}

std::vector<TensorEntry> Came::state_table() const {
  std::vector<TensorEntry> out;
  for (const OptimParam& p : params_)
    for (TensorEntry& e : state_entries(p.name, p.param->shape())) out.push_back(std::move(e));
  return out;
}

void Came::export_state(const TensorSink& put) {
  for (size_t i = 0; i < params_.size(); i++) {
    const Shape& shape = params_[i].param->shape();
    const std::vector<TensorEntry> entries = state_entries(params_[i].name, shape);
    const std::vector<Tensor*> slots = tensors_of(states_[i], factored(shape));
    for (size_t k = 0; k < entries.size(); k++) put(entries[k].name, *slots[k]);
  }
}

}  // namespace llm
