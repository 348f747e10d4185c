// defines: Galore
#include "engine/galore.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "engine/adafactor.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops/gemm_call.h"

namespace llm {

namespace {
// torch.linalg.svd keeps min(m, n) singular vectors, of which the projector slices `rank`.
int64_t kept_rank(const Shape& w, const GaloreConfig& c) { return std::min({c.rank, w[0], w[1]}); }
}  // namespace

Shape Galore::low_rank_shape(const Shape& w, const GaloreConfig& c) {
  return llm::low_rank_shape(w, c.side, kept_rank(w, c));
}

Shape Galore::projector_shape(const Shape& w, const GaloreConfig& c) {
  return llm::projector_shape(w, c.side, kept_rank(w, c));
}

Galore::Galore(std::vector<OptimParam> params, std::vector<bool> projected, AdamWConfig adam, GaloreConfig galore,
               GaloreInner inner, bool layerwise)
    : LowRankOptimizer(std::move(params), adam, layerwise), galore_(galore), inner_(inner) {
  LLM_CHECK(projected.size() == params_.size(), "Galore: one projected flag per parameter");
  LLM_CHECK(galore_.rank >= 1 && galore_.update_proj_gap >= 1 && galore_.gamma_proj >= 1,
            "Galore: rank, update_proj_gap and gamma_proj are at least 1");
  for (size_t i = 0; i < params_.size(); i++) {
    const Tensor& w = *params_[i].param;
    LLM_CHECK(w.dtype() == DType::f32, "Galore: " + params_[i].name + " is " + w.str() + "; it updates f32 parameters");
    LLM_CHECK(w.dim() <= 2 && (!projected[i] || w.dim() == 2),
              "Galore: " + params_[i].name + " is " + w.str() + "; it projects matrices and updates vectors");
    Slot slot;
    slot.projected = projected[i];
    slot.from_right = projected[i] && projects_from_right(w.shape(), galore_.side);
    if (slot.projected) {
      const Shape basis = projector_shape(w.shape(), galore_);
      if (quantised_bases()) {
        LLM_CHECK(shape_numel(basis) % galore_.quant_group == 0,
                  "Galore: " + params_[i].name + "'s basis is not whole groups of " + std::to_string(galore_.quant_group));
        slot.quantised = {Tensor::zeros(basis, DType::u8, w.device()),
                          Tensor::zeros({shape_numel(basis) / galore_.quant_group}, DType::f32, w.device()),
                          Tensor::zeros({shape_numel(basis) / galore_.quant_group, 1}, DType::f32, w.device())};
      } else {
        slot.projector = Tensor::zeros(basis, DType::f32, w.device());
      }
      slot.schedule.gap = galore_.update_proj_gap;
      if (galore_.queue_size > 0)
        slot.schedule.top = Tensor::zeros({slot.from_right ? basis[1] : basis[0]}, DType::f32, w.device());
    }
    slot.state_shape = projected[i] ? low_rank_shape(w.shape(), galore_) : w.shape();
    if (inner_ == GaloreInner::adafactor) {
      for (const TensorEntry& e : adafactor_state_table(params_[i].name, slot.state_shape))
        (slot.row.defined() ? slot.col : slot.row) = Tensor::zeros(e.shape, DType::f32, w.device());
    } else {
      // bitsandbytes decides 8-bit state by the size of the tensor it updates: the low-rank one.
      const bool quantised = inner_ == GaloreInner::bnb_adamw_8bit && shape_numel(slot.state_shape) >= galore_.min_8bit_size;
      slot.moments.emplace(slot.state_shape, quantised, w.device());
    }
    slots_.push_back(std::move(slot));
  }
}

void Galore::update(size_t i, Tensor& p, const Tensor& grad, float lr, float clip) {
  if (slots_[i].projected) projected_update(i, p, grad, lr, clip);
  else inner_step(i, p, grad, lr, clip, /*decay=*/true);
}

// One step of parameter i's optimizer on `target` from grad x clip: the parameter itself, or a
// projected matrix's zero stand-in, which it leaves at minus the step (decay is then the caller's).
void Galore::inner_step(size_t i, Tensor& target, const Tensor& grad, float lr, float clip, bool decay) {
  Slot& slot = slots_[i];
  const int64_t done = updates_done(i);
  const float own_lr = lr * params_[i].lr_scale;
  const float weight_decay = decay && params_[i].decay ? config_.weight_decay : 0.0f;
  Backend& be = backend(target.device());
  if (inner_ == GaloreInner::adafactor) {
    AdafactorArgs args = adafactor_args(own_lr, done, weight_decay);
    args.grad_scale = clip;
    be.adafactor(target, grad, slot.row, slot.col, args);
    return;
  }
  if (inner_ == GaloreInner::bnb_adamw_8bit) {
    AdamWArgs args = adamw_args(config_, own_lr, done, /*decay=*/false);
    args.grad_scale = clip;
    args.weight_decay = weight_decay;  // before the step, as AdamW's kernel
    slot.moments->update(target, grad, args);
    return;
  }
  AdamWArgs args = old_adamw_args(config_, own_lr, done);
  args.grad_scale = clip;
  slot.moments->update(target, grad, args);
  if (weight_decay > 0) be.scale(target, 1.0f - own_lr * weight_decay);  // after the step
}

// The projected step: R = clip G P^T (or clip Q^T G), the inner step on R from a zero tensor (as
// galore_torch's 8-bit optimizer steps a zeroed stand-in parameter), carried back and scaled into
// p, with the decay where each optimizer puts it. The basis is the top singular vectors of the
// clipped gradient, computed on the host by LAPACK, when the updates before this one are a multiple
// of the gap.
void Galore::projected_update(size_t i, Tensor& p, const Tensor& grad, float lr, float clip) {
  LLM_CHECK(grad.dtype() == DType::f32, "Galore: a projected gradient is f32, not " + grad.str());
  Slot& slot = slots_[i];
  Backend& be = backend(p.device());
  if ((updates_done(i) - 1) % slot.schedule.gap == 0) refresh_basis(slot, grad);
  const Tensor basis = quantised_bases() ? dequantise_basis(slot.quantised) : slot.projector;
  Tensor low_rank = Tensor::empty(slot.state_shape, DType::f32, p.device());
  if (slot.from_right) gemm(matrices(grad), false, matrices(basis), true, low_rank, 1, 0.0f, clip);
  else gemm(matrices(basis), true, matrices(grad), false, low_rank, 1, 0.0f, clip);
  Tensor step = Tensor::zeros(slot.state_shape, DType::f32, p.device());
  inner_step(i, step, low_rank, lr, 1.0f, /*decay=*/false);  // step = -(the optimizer's step)
  const float own_lr = lr * params_[i].lr_scale;
  const float weight_decay = params_[i].decay ? config_.weight_decay : 0.0f;
  // Adafactor decays the parameter before adding the step, galore_torch's AdamWs after.
  if (inner_ == GaloreInner::adafactor && weight_decay > 0) be.scale(p, 1.0f - own_lr * weight_decay);
  if (slot.from_right) gemm(matrices(step), false, matrices(basis), false, p, 1, 1.0f, galore_.scale);
  else gemm(matrices(basis), false, matrices(step), false, p, 1, 1.0f, galore_.scale);
  if (inner_ != GaloreInner::adafactor && weight_decay > 0) be.scale(p, 1.0f - own_lr * weight_decay);
}

// The top singular vectors of the gradient (the scale clipping put on it changes none), and under
// Q-GaLore the gap's growth from the top one and the basis' codes.
void Galore::refresh_basis(Slot& slot, const Tensor& grad) {
  const Shape shape = quantised_bases() ? slot.quantised.codes.shape() : slot.projector.shape();
  const std::vector<float> basis =
      galore_basis(thin_svd(HostMatrix{grad.size(0), grad.size(1), grad.to_floats()}), slot.from_right, shape);
  if (galore_.queue_size > 0) {
    // A right basis' first row, a left one's first column.
    std::vector<float> top(static_cast<size_t>(slot.from_right ? shape[1] : shape[0]));
    for (size_t k = 0; k < top.size(); k++) top[k] = basis[slot.from_right ? k : k * static_cast<size_t>(shape[1])];
    slot.schedule.record(top, galore_.queue_size, galore_.cos_threshold, galore_.gamma_proj);
  }
  if (quantised_bases()) slot.quantised = quantise_basis(basis, shape, galore_.quant_bits, galore_.quant_group, grad.device());
  else slot.projector.copy_from(Tensor::from_floats(basis, shape));
}

size_t Galore::state_bytes() const {
  size_t bytes = 0;
  for (const Slot& s : slots_) {
    bytes += s.moments ? s.moments->bytes() : s.row.nbytes() + (s.col.defined() ? s.col.nbytes() : 0);
    if (!s.projected) continue;
    bytes += quantised_bases() ? s.quantised.codes.nbytes() + s.quantised.scales.nbytes() + s.quantised.zeros.nbytes()
                               : s.projector.nbytes();
    if (s.schedule.top.defined()) bytes += s.schedule.top.nbytes();
  }
  return bytes;
}

namespace {
const char* inner_name(GaloreInner inner) {
  switch (inner) {
    case GaloreInner::hf_adamw: return "AdamW";
    case GaloreInner::bnb_adamw_8bit: return "AdamW 8-bit, blocks of 256";
    case GaloreInner::adafactor: return "Adafactor";
  }
  return "";
}
}  // namespace

std::string Galore::describe() const {
  int64_t projected = 0;
  for (const Slot& s : slots_) projected += s.projected;
  const std::string inner = inner_ == GaloreInner::hf_adamw ? "transformers' AdamW, f32 moments"
                            : inner_ == GaloreInner::adafactor
                                ? "transformers' Adafactor, f32 factored second moments"
                                : "bitsandbytes' 8-bit AdamW: u8 moments with an f32 absmax per 256 elements for "
                                  "tensors (low-rank ones by their own size) of 4096 elements or more";
  const std::string q_galore =
      quantised_bases() || galore_.queue_size > 0
          ? fmt::format("; Q-GaLore: {}, the gap x {} once the last {} top singular vectors average a similarity of {:g}",
                        quantised_bases() ? fmt::format("{}-bit bases in groups of {}", galore_.quant_bits, galore_.quant_group)
                                          : std::string("f32 bases"),
                        galore_.gamma_proj, galore_.queue_size, galore_.cos_threshold)
          : "";
  return fmt::format("GaLore ({}; decay {:g}): {} matrices projected to rank {}, bases every {} updates, scale {:g}{}{}",
                     inner, config_.weight_decay, projected, galore_.rank, galore_.update_proj_gap, galore_.scale,
                     q_galore, layerwise_note());
}

std::string Galore::state_format() const {
  const char* sides[] = {"std", "reverse_std", "right", "left"};
  return std::string("GaLore ") + inner_name(inner_) + ", rank " + std::to_string(galore_.rank) + ", " +
         sides[static_cast<int>(galore_.side)] +
         (quantised_bases() ? ", " + std::to_string(galore_.quant_bits) + "-bit bases" : "") +
         (galore_.queue_size > 0 ? ", adaptive gap" : "");
}

std::vector<TensorEntry> Galore::state_table() const {
  std::vector<TensorEntry> out;
  for (size_t i = 0; i < params_.size(); i++) {
    const Slot& s = slots_[i];
    for (TensorEntry& e : s.moments ? moment_table(params_[i].name, s.state_shape, s.moments->quantised())
                                    : adafactor_state_table(params_[i].name, s.state_shape))
      out.push_back(std::move(e));
    if (!s.projected) continue;
    const std::string& name = params_[i].name;
    if (quantised_bases()) {
      out.push_back({name + ".qgalore_projector.codes", DType::u8, s.quantised.codes.shape()});
      out.push_back({name + ".qgalore_projector.scales", DType::f32, s.quantised.scales.shape()});
      out.push_back({name + ".qgalore_projector.zeros", DType::f32, s.quantised.zeros.shape()});
    } else {
      out.push_back({name + ".galore_projector", DType::f32, s.projector.shape()});
    }
    if (s.schedule.top.defined()) out.push_back({name + ".qgalore_top_vector", DType::f32, s.schedule.top.shape()});
  }
  return out;
}

void Galore::export_state(const TensorSink& put) {
  for (size_t i = 0; i < params_.size(); i++) {
    const Slot& s = slots_[i];
    if (s.moments) {
      s.moments->export_to(put, params_[i].name, s.state_shape);
    } else {
      const std::vector<TensorEntry> names = adafactor_state_table(params_[i].name, s.state_shape);
      put(names[0].name, s.row);
      if (s.col.defined()) put(names[1].name, s.col);
    }
    if (!s.projected) continue;
    const std::string& name = params_[i].name;
    if (quantised_bases()) {
      put(name + ".qgalore_projector.codes", s.quantised.codes);
      put(name + ".qgalore_projector.scales", s.quantised.scales);
      put(name + ".qgalore_projector.zeros", s.quantised.zeros);
    } else {
      put(name + ".galore_projector", s.projector);
    }
    if (s.schedule.top.defined()) put(name + ".qgalore_top_vector", s.schedule.top);
  }
}

std::map<std::string, std::string> Galore::scalar_state() const {
  std::map<std::string, std::string> out;
  if (galore_.queue_size > 0)
    for (size_t i = 0; i < params_.size(); i++)
      if (slots_[i].projected) out["qgalore_schedule." + params_[i].name] = slots_[i].schedule.to_text();
  return out;
}

void Galore::restore_scalar_state(const std::map<std::string, std::string>& metadata) {
  if (galore_.queue_size <= 0) return;
  for (size_t i = 0; i < params_.size(); i++) {
    if (!slots_[i].projected) continue;
    const std::string key = "qgalore_schedule." + params_[i].name;
    const auto it = metadata.find(key);
    if (it == metadata.end()) throw std::runtime_error("metadata " + key + ": missing (Q-GaLore's basis schedule)");
    slots_[i].schedule.from_text(it->second, key);
  }
}

}  // namespace llm
