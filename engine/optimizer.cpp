// defines: AdamW (f32 or 8-bit blockwise state), adamw_args, clip_grad_norm
#include "engine/optimizer.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <unordered_map>

#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"
#include "engine/quant_map.h"

namespace llm {

AdamWMoments::AdamWMoments(const Shape& shape, bool quantised, Device device, DType dtype, int code_bits,
                           QuantZeros zeros)
    : code_bits(code_bits) {
  LLM_CHECK(dtype == DType::f32 || (dtype == DType::bf16 && !quantised),
            std::string("AdamW moments are f32 or bf16 (8-bit codes from f32 only), not ") + dtype_name(dtype));
  if (!quantised) {
    m = Tensor::zeros(shape, dtype, device);
    v = Tensor::zeros(shape, dtype, device);
    return;
  }
  const int64_t numel = shape_numel(shape), blocks = blocks_of(numel);
  LLM_CHECK(code_bits == 8 || code_bits == 4, "quantised moments have 8- or 4-bit codes, not " + std::to_string(code_bits));
  LLM_CHECK(code_bits == 8 || numel % kQuantBlock == 0,
            "4-bit moments hold whole blocks of " + std::to_string(kQuantBlock) + " elements, not " + std::to_string(numel));
  const Shape codes = code_bits == 8 ? shape : Shape{numel / 2};
  if (zeros == QuantZeros::byte_0) {
    m = Tensor::zeros(codes, DType::u8, device);
    v = Tensor::zeros(codes, DType::u8, device);
  } else {
    LLM_CHECK(code_bits == 8, "bitsandbytes' moments have 8-bit codes, not " + std::to_string(code_bits));
    m = zero_codes(shape, true, device);
    v = zero_codes(shape, false, device);
  }
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
    : Optimizer(config), params_(std::move(params)), state_(state) {
  for (const OptimParam& p : params_) {
    const Tensor& w = *p.param;
    LLM_CHECK(w.dtype() == DType::f32 || (w.dtype() == DType::bf16 && state_ == AdamWState::f32),
              "AdamW: " + p.name + " is " + w.str() + "; parameters are f32, or bf16 with unquantised moments");
    moments_.emplace_back(w.shape(), quantises(state_, p), w.device(), w.dtype());
  }
  missed_.assign(params_.size(), 0);
}

AdamWConfig AdamWConfig::at_lr(float lr) const {
  AdamWConfig now = *this;
  if (peak_lr > 0) now.weight_decay = static_cast<float>(double(weight_decay) * lr / peak_lr);
  return now;
}

AdamWArgs adamw_args(const AdamWConfig& config, float lr, int64_t t, bool decay) {
  return {lr, config.beta1, config.beta2, config.eps, decay ? config.weight_decay : 0.0f,
          lr / (1.0f - std::pow(config.beta1, static_cast<float>(t))),
          std::sqrt(1.0f - std::pow(config.beta2, static_cast<float>(t)))};
}

double AdamW::step(float lr, double max_norm, bool update) {
  const AdamWConfig now = config_.at_lr(lr);
  return each_update(params_, max_norm, update, [&](size_t i, Tensor& p, const Tensor& grad, float clip) {
    AdamWArgs args = adamw_args(now, lr * params_[i].lr_scale, t_ - missed_[i], params_[i].decay);
    args.grad_scale = clip;
    moments_[i].update(p, grad, args);
  });
}

std::vector<int64_t> Optimizer::missed_updates() const {
  for (int64_t m : missed_)
    if (m > 0) return missed_;
  return {};
}

void Optimizer::set_missed_updates(const std::vector<int64_t>& missed) {
  if (missed.empty()) {
    std::fill(missed_.begin(), missed_.end(), 0);
    return;
  }
  LLM_CHECK(!missed_.empty(), describe() + " keeps no per-parameter update counts");
  LLM_CHECK(missed.size() == missed_.size(), describe() + ": " + std::to_string(missed.size()) +
                                                 " counts of missed updates for " + std::to_string(missed_.size()) +
                                                 " parameters");
  for (int64_t m : missed) LLM_CHECK(m >= 0 && m <= t_, describe() + ": a parameter missed " + std::to_string(m) +
                                                            " of " + std::to_string(t_) + " updates");
  missed_ = missed;
}

std::string AdamW::describe() const {
  const bool bf16 = !moments_.empty() && moments_.front().m.dtype() == DType::bf16;
  return bf16 ? "AdamW (bf16 weights and moments, each update in f32)" : adamw_name(state_, config_);
}

std::string state_format_of(const std::string& name, AdamWState state) {
  return state == AdamWState::f32 ? name : name + " 8-bit, blocks of " + std::to_string(kQuantBlock);
}

std::string AdamW::state_format() const {
  const bool bf16 = !moments_.empty() && moments_.front().m.dtype() == DType::bf16;
  return bf16 ? "AdamW, bf16 moments" : state_format_of("AdamW", state_);
}

std::string adamw_name(AdamWState state, const AdamWConfig& config) {
  if (config.peak_lr > 0) {
    std::ostringstream peak;
    peak << config.peak_lr;
    return "AdamC (AdamW decaying by weight_decay x lr^2 / " + peak.str() + ")";
  }
  return state == AdamWState::f32 ? "AdamW" : blockwise_8bit_description("AdamW", "moments");
}

void add_moment_entries(std::vector<TensorEntry>& out, const std::string& name, const Shape& shape, bool quantised,
                        DType dtype, int code_bits) {
  if (!quantised) {
    out.push_back({name, dtype, shape});
    return;
  }
  out.push_back({name + ".codes", DType::u8, code_bits == 8 ? shape : Shape{shape_numel(shape) * code_bits / 8}});
  out.push_back({name + ".absmax", DType::f32, {blocks_of(shape_numel(shape))}});
}

Tensor zero_codes(const Shape& shape, bool is_signed, Device device) {
  const QuantMap<256> map = make_quant_map(dynamic_quant_map(is_signed));
  return Tensor::full(shape, quantize_nearest(map, 0.0f), DType::u8, device);
}

std::string blockwise_8bit_description(const std::string& name, const std::string& state) {
  return name + " 8-bit (bitsandbytes blockwise: u8 " + state + ", f32 absmax per " + std::to_string(kQuantBlock) +
         " elements; tensors under " + std::to_string(kMin8bitSize) + " elements and the token embedding keep f32 " +
         state + ")";
}

Moment::Moment(const Shape& shape, bool quantised, bool is_signed, Device device) {
  if (!quantised) {
    values = Tensor::zeros(shape, DType::f32, device);
    return;
  }
  values = zero_codes(shape, is_signed, device);
  absmax = Tensor::zeros({blocks_of(shape_numel(shape))}, DType::f32, device);
}

void Moment::export_to(const TensorSink& put, const std::string& name) const {
  if (!quantised()) {
    put(name, values);
    return;
  }
  put(name + ".codes", values);
  put(name + ".absmax", absmax);
}

std::vector<TensorEntry> moment_table(const std::string& param, const Shape& shape, bool quantised, DType dtype,
                                      int code_bits) {
  std::vector<TensorEntry> out;
  add_moment_entries(out, param + ".exp_avg", shape, quantised, dtype, code_bits);
  add_moment_entries(out, param + ".exp_avg_sq", shape, quantised, dtype, code_bits);
  return out;
}

std::vector<TensorEntry> AdamW::state_table() const {
  std::vector<TensorEntry> out;
  for (size_t i = 0; i < params_.size(); i++)
    for (TensorEntry& e : moment_table(params_[i].name, params_[i].param->shape(), moments_[i].quantised(),
                                       moments_[i].m.dtype()))
      out.push_back(std::move(e));
  return out;
}

void AdamWMoments::export_to(const TensorSink& put, const std::string& param, const Shape& shape) const {
  const std::vector<TensorEntry> names = moment_table(param, shape, quantised(), m.dtype(), code_bits);
  const Tensor* plain[] = {&m, &v};
  const Tensor* q8[] = {&m, &m_absmax, &v, &v_absmax};  // moment_table's order
  const Tensor* const* values = quantised() ? q8 : plain;
  for (size_t k = 0; k < names.size(); k++) put(names[k].name, *values[k]);
}

void AdamW::export_state(const TensorSink& put) {
  for (size_t i = 0; i < params_.size(); i++) moments_[i].export_to(put, params_[i].name, params_[i].param->shape());
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
double global_grad_norm(const std::vector<Tensor*>& params) {
  std::vector<Tensor> grads;
  for (Tensor* p : params)
    if (p->grad().defined()) grads.push_back(p->grad());
  return std::sqrt(sum_squares(grads));
}

double global_grad_norm(const std::vector<OptimParam>& params) {
  std::vector<Tensor*> tensors;
  for (const OptimParam& p : params) tensors.push_back(p.param);
  return global_grad_norm(tensors);
}

LeafReadyHook Optimizer::updates_as_gradients_complete(const std::vector<OptimParam>& params, ParamUpdate update) {
  std::unordered_map<const AutogradMeta*, size_t> index;
  for (size_t i = 0; i < params.size(); i++) index[params[i].param->autograd_meta().get()] = i;
  return [this, &params, update = std::move(update), index = std::move(index)](AutogradMeta& leaf) {
    const auto it = index.find(&leaf);
    if (it == index.end()) return;
    Tensor& p = *params[it->second].param;
    const Tensor grad = p.grad();
    if (!grad.defined()) return;
    const double own = sum_squares(grad);
    backward_squares_ += own;
    if (std::isfinite(own)) update(it->second, p, grad);
    p.zero_grad();
  };
}

double Optimizer::take_backward_norm() {
  const double norm = std::sqrt(backward_squares_);
  backward_squares_ = 0.0;
  return norm;
}

float clip_coefficient(double norm, double max_norm) {
  return max_norm > 0.0 && std::isfinite(norm) && norm > max_norm ? static_cast<float>(max_norm / (norm + 1e-6)) : 1.0f;
}

double clip_grad_norm(const std::vector<Tensor*>& params, double max_norm) {
  const double norm = global_grad_norm(params);
  const float coef = clip_coefficient(norm, max_norm);
  if (coef != 1.0f)
    for (Tensor* p : params) {
      Tensor g = p->grad();
      if (g.defined()) scale_(g, coef);
    }
  return norm;
}

}  // namespace llm
