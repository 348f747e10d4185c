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
  LLM_CHECK(galore_.rank >= 1 && galore_.update_proj_gap >= 1, "Galore: rank and update_proj_gap are at least 1");
  for (size_t i = 0; i < params_.size(); i++) {
    const Tensor& w = *params_[i].param;
    LLM_CHECK(w.dtype() == DType::f32, "Galore: " + params_[i].name + " is " + w.str() + "; it updates f32 parameters");
    LLM_CHECK(w.dim() <= 2 && (!projected[i] || w.dim() == 2),
              "Galore: " + params_[i].name + " is " + w.str() + "; it projects matrices and updates vectors");
    Slot slot;
    slot.projected = projected[i];
    slot.from_right = projected[i] && projects_from_right(w.shape(), galore_.side);
    if (slot.projected) slot.projector = Tensor::zeros(projector_shape(w.shape(), galore_), DType::f32, w.device());
    slot.state_shape = projected[i] ? low_rank_shape(w.shape(), galore_) : w.shape();
    if (inner_ == GaloreInner::adafactor) {
      for (const TensorEntry& e : adafactor_state_table(params_[i].name, slot.state_shape))
        (slot.row.defined() ? slot.col : slot.row) = Tensor::zeros(e.shape, DType::f32, w.device());
    } else {
      // bitsandbytes decides 8-bit state by the size of the tensor it updates: the low-rank one.
      const bool quantised = inner_ == GaloreInner::bnb_adamw_8bit && shape_numel(slot.state_shape) >= kMin8bitSize;
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
  if ((updates_done(i) - 1) % galore_.update_proj_gap == 0) {
    // The scale clipping put on the gradient changes no singular vector.
    const HostMatrix g{grad.size(0), grad.size(1), grad.to_floats()};
    slot.projector.copy_from(Tensor::from_floats(galore_basis(thin_svd(g), slot.from_right, slot.projector.shape()),
                                                 slot.projector.shape()));
  }
  const Tensor& basis = slot.projector;
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

size_t Galore::state_bytes() const {
  size_t bytes = 0;
  for (const Slot& s : slots_) {
    bytes += s.moments ? s.moments->bytes() : s.row.nbytes() + (s.col.defined() ? s.col.nbytes() : 0);
    if (s.projected) bytes += s.projector.nbytes();
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
  return fmt::format("GaLore ({}; decay {:g}): {} matrices projected to rank {}, bases every {} updates, scale {:g}{}",
                     inner, config_.weight_decay, projected, galore_.rank, galore_.update_proj_gap, galore_.scale,
                     layerwise_note());
}

std::string Galore::state_format() const {
  const char* sides[] = {"std", "reverse_std", "right", "left"};
  return std::string("GaLore ") + inner_name(inner_) + ", rank " + std::to_string(galore_.rank) + ", " +
         sides[static_cast<int>(galore_.side)];
}

std::vector<TensorEntry> Galore::state_table() const {
  std::vector<TensorEntry> out;
  for (size_t i = 0; i < params_.size(); i++) {
    const Slot& s = slots_[i];
    for (TensorEntry& e : s.moments ? moment_table(params_[i].name, s.state_shape, s.moments->quantised())
                                    : adafactor_state_table(params_[i].name, s.state_shape))
      out.push_back(std::move(e));
    if (s.projected) out.push_back({params_[i].name + ".galore_projector", DType::f32, s.projector.shape()});
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
    if (s.projected) put(params_[i].name + ".galore_projector", s.projector);
  }
}

}  // namespace llm
