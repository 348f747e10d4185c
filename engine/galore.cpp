// defines: Galore
#include "engine/galore.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops/gemm_call.h"

namespace llm {

namespace {

// Whether galore_torch's projector takes a basis P from the right (G P^T) for an m x n gradient.
bool from_right(const Shape& w, GaloreSide side) {
  switch (side) {
    case GaloreSide::std_side: return w[0] >= w[1];
    case GaloreSide::reverse_std: return w[0] < w[1];
    case GaloreSide::right: return true;
    case GaloreSide::left: return false;
  }
  return true;
}

// torch.linalg.svd keeps min(m, n) singular vectors, of which the projector slices `rank`.
int64_t kept_rank(const Shape& w, const GaloreConfig& c) { return std::min({c.rank, w[0], w[1]}); }

}  // namespace

std::vector<float> galore_basis(const ThinSvd& svd, bool from_right, const Shape& basis) {
  const int64_t rank = from_right ? basis[0] : basis[1], length = from_right ? basis[1] : basis[0];
  std::vector<float> values(shape_numel(basis));
  for (int64_t r = 0; r < rank; r++) {
    const auto element = [&](int64_t i) { return from_right ? svd.vt.at(r, i) : svd.u.at(i, r); };
    int64_t largest = 0;
    for (int64_t i = 1; i < length; i++)
      if (std::fabs(element(i)) > std::fabs(element(largest))) largest = i;
    const float sign = element(largest) < 0 ? -1.0f : 1.0f;
    for (int64_t i = 0; i < length; i++) values[from_right ? r * length + i : i * rank + r] = sign * element(i);
  }
  return values;
}

Shape Galore::low_rank_shape(const Shape& w, const GaloreConfig& c) {
  return from_right(w, c.side) ? Shape{w[0], kept_rank(w, c)} : Shape{kept_rank(w, c), w[1]};
}

Shape Galore::projector_shape(const Shape& w, const GaloreConfig& c) {
  return from_right(w, c.side) ? Shape{kept_rank(w, c), w[1]} : Shape{w[0], kept_rank(w, c)};
}

Galore::Galore(std::vector<OptimParam> params, std::vector<bool> projected, AdamWConfig adam, GaloreConfig galore,
               GaloreAdam kind)
    : Optimizer(adam), params_(std::move(params)), galore_(galore), kind_(kind) {
  LLM_CHECK(projected.size() == params_.size(), "Galore: one projected flag per parameter");
  LLM_CHECK(galore_.rank >= 1 && galore_.update_proj_gap >= 1, "Galore: rank and update_proj_gap are at least 1");
  for (size_t i = 0; i < params_.size(); i++) {
    const Tensor& w = *params_[i].param;
    LLM_CHECK(w.dtype() == DType::f32, "Galore: " + params_[i].name + " is " + w.str() + "; it updates f32 parameters");
    LLM_CHECK(!projected[i] || w.dim() == 2, "Galore: " + params_[i].name + " is " + w.str() + "; it projects matrices");
    const Shape shape = projected[i] ? low_rank_shape(w.shape(), galore_) : w.shape();
    // bitsandbytes decides 8-bit state by the size of the tensor it updates: the low-rank one.
    const bool quantised = kind_ == GaloreAdam::bnb_8bit && shape_numel(shape) >= kMin8bitSize;
    Slot slot{projected[i], projected[i] && from_right(w.shape(), galore_.side),
              projected[i] ? Tensor::zeros(projector_shape(w.shape(), galore_), DType::f32, w.device()) : Tensor(),
              AdamWMoments(shape, quantised, w.device())};
    slots_.push_back(std::move(slot));
  }
  missed_.assign(params_.size(), 0);
}

double Galore::step(float lr, double max_norm, bool update) {
  return each_update(params_, max_norm, update, [&](size_t i, Tensor& p, const Tensor& grad, float clip) {
    const int64_t done = t_ - missed_[i];  // this parameter's updates, this one included
    AdamWArgs args = adamw_args(config_, lr * params_[i].lr_scale, done, params_[i].decay);
    // transformers' old AdamW adds eps to sqrt(v) before the bias correction: AdamW's update with
    // eps / sqrt(1 - beta2^t) in eps's place is its lr sqrt(1 - beta2^t) / (1 - beta1^t) m / (sqrt(v) + eps).
    if (kind_ == GaloreAdam::hf_adamw) args.eps /= args.bias2_sqrt;
    Slot& slot = slots_[i];
    if (slot.projected) return projected_update(slot, p, grad, args, clip, done);
    // transformers' old AdamW decays after the step, bitsandbytes' before it (AdamW's kernel).
    const float decay = args.weight_decay;
    if (kind_ == GaloreAdam::hf_adamw) args.weight_decay = 0.0f;
    args.grad_scale = clip;
    slot.moments.update(p, grad, args);
    if (kind_ == GaloreAdam::hf_adamw && decay > 0) backend(p.device()).scale(p, 1.0f - args.lr * decay);
  });
}

// The projected step: R = clip G P^T (or clip Q^T G), Adam's step on R from a zero tensor (as
// galore_torch's 8-bit optimizer steps a zeroed stand-in parameter), carried back and scaled into
// p, then the decay. The basis is the top singular vectors of the clipped gradient, computed on
// the host by LAPACK as torch.linalg.svd does on the CPU, when done - 1 is a multiple of the gap.
void Galore::projected_update(Slot& slot, Tensor& p, const Tensor& grad, const AdamWArgs& args, float clip,
                              int64_t done) {
  LLM_CHECK(grad.dtype() == DType::f32, "Galore: a projected gradient is f32, not " + grad.str());
  Backend& be = backend(p.device());
  if ((done - 1) % galore_.update_proj_gap == 0) {
    // The scale clipping put on the gradient changes no singular vector.
    const HostMatrix g{grad.size(0), grad.size(1), grad.to_floats()};
    slot.projector.copy_from(Tensor::from_floats(galore_basis(thin_svd(g), slot.from_right, slot.projector.shape()),
                                                 slot.projector.shape()));
  }
  const Tensor& basis = slot.projector;
  Tensor low_rank = Tensor::empty(slot.moments.m.shape(), DType::f32, p.device());
  if (slot.from_right) gemm(matrices(grad), false, matrices(basis), true, low_rank, 1, 0.0f, clip);
  else gemm(matrices(basis), true, matrices(grad), false, low_rank, 1, 0.0f, clip);
  Tensor step = Tensor::zeros(low_rank.shape(), DType::f32, p.device());
  AdamWArgs inner = args;
  inner.weight_decay = 0.0f;
  slot.moments.update(step, low_rank, inner);  // step = -(Adam's step)
  if (slot.from_right) gemm(matrices(step), false, matrices(basis), false, p, 1, 1.0f, galore_.scale);
  else gemm(matrices(basis), false, matrices(step), false, p, 1, 1.0f, galore_.scale);
  if (args.weight_decay > 0) be.scale(p, 1.0f - args.lr * args.weight_decay);
}

size_t Galore::state_bytes() const {
  size_t bytes = 0;
  for (const Slot& s : slots_) bytes += s.moments.bytes() + (s.projected ? s.projector.nbytes() : 0);
  return bytes;
}

std::string Galore::describe() const {
  int64_t projected = 0;
  for (const Slot& s : slots_) projected += s.projected;
  const std::string adam = kind_ == GaloreAdam::hf_adamw
                               ? "transformers' AdamW, f32 moments"
                               : "bitsandbytes' 8-bit AdamW: u8 moments with an f32 absmax per 256 elements for "
                                 "tensors (low-rank ones by their own size) of 4096 elements or more";
  return fmt::format("GaLore ({}; decay {:g}): {} matrices projected to rank {}, bases every {} updates, scale {:g}",
                     adam, config_.weight_decay, projected, galore_.rank, galore_.update_proj_gap, galore_.scale);
}

std::string Galore::state_format() const {
  const char* sides[] = {"std", "reverse_std", "right", "left"};
  return std::string("GaLore ") + (kind_ == GaloreAdam::hf_adamw ? "AdamW" : "AdamW 8-bit, blocks of 256") +
         ", rank " + std::to_string(galore_.rank) + ", " + sides[static_cast<int>(galore_.side)];
}

std::vector<TensorEntry> Galore::state_table() const {
  std::vector<TensorEntry> out;
  for (size_t i = 0; i < params_.size(); i++) {
    const Slot& s = slots_[i];
    for (TensorEntry& e : moment_table(params_[i].name, s.moments.m.shape(), s.moments.quantised()))
      out.push_back(std::move(e));
    if (s.projected) out.push_back({params_[i].name + ".galore_projector", DType::f32, s.projector.shape()});
  }
  return out;
}

void Galore::export_state(const TensorSink& put) {
  for (size_t i = 0; i < params_.size(); i++) {
    const Slot& s = slots_[i];
    s.moments.export_to(put, params_[i].name, s.moments.m.shape());
    if (s.projected) put(params_[i].name + ".galore_projector", s.projector);
  }
}

}  // namespace llm
