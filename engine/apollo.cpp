// defines: Apollo
#include "engine/apollo.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"
#include "engine/ops/gemm_call.h"
#include "engine/torch_generator.h"

namespace llm {

namespace {
// apollo_torch's norm_dim: a tall (or square) gradient's factors run along its rows.
bool scales_rows(const Shape& w) { return w[0] >= w[1]; }

int64_t basis_rank(const Shape& w, const ApolloConfig& c) {
  return c.basis == ApolloBasis::svd ? std::min({c.rank, w[0], w[1]}) : c.rank;
}
}  // namespace

Shape Apollo::low_rank_shape(const Shape& w, const ApolloConfig& c) {
  return llm::low_rank_shape(w, c.side, basis_rank(w, c));
}

Shape Apollo::projector_shape(const Shape& w, const ApolloConfig& c) {
  return llm::projector_shape(w, c.side, basis_rank(w, c));
}

bool Apollo::scaling_fits(const Shape& w, const ApolloConfig& c) {
  if (c.scaling == ApolloScaling::tensor) return true;
  const Shape r = low_rank_shape(w, c);
  const int64_t factors = scales_rows(w) ? r[0] : r[1], wanted = scales_rows(w) ? w[0] : w[1];
  return factors == wanted || factors == 1;
}

Apollo::Apollo(std::vector<OptimParam> params, std::vector<bool> projected, std::vector<int64_t> seeds,
               AdamWConfig plain, AdamWConfig low_rank, ApolloConfig apollo, bool layerwise)
    : LowRankOptimizer(std::move(params), plain, layerwise), low_rank_(low_rank), apollo_(apollo) {
  LLM_CHECK(projected.size() == params_.size() && seeds.size() == params_.size(),
            "Apollo: one projected flag and one seed per parameter");
  LLM_CHECK(apollo_.rank >= 1 && apollo_.update_proj_gap >= 1, "Apollo: rank and update_proj_gap are at least 1");
  for (size_t i = 0; i < params_.size(); i++) {
    const Tensor& w = *params_[i].param;
    LLM_CHECK(w.dtype() == DType::f32, "Apollo: " + params_[i].name + " is " + w.str() + "; it updates f32 parameters");
    LLM_CHECK(w.dim() <= 2 && (!projected[i] || (w.dim() == 2 && scaling_fits(w.shape(), apollo_))),
              "Apollo: " + params_[i].name + " is " + w.str() + "; it projects matrices its factors fit and updates vectors");
    Slot slot;
    slot.projected = projected[i];
    slot.state_shape = projected[i] ? low_rank_shape(w.shape(), apollo_) : w.shape();
    if (slot.projected) {
      slot.from_right = projects_from_right(w.shape(), apollo_.side);
      slot.by_rows = scales_rows(w.shape());
      slot.seed = seeds[i];
      slot.projector = Tensor::zeros(projector_shape(w.shape(), apollo_), DType::f32, w.device());
      slot.scaled_grad_norm = Tensor::zeros({1}, DType::f32, w.device());
    }
    slot.moments.emplace(slot.state_shape, /*quantised=*/false, w.device());
    slots_.push_back(std::move(slot));
  }
}

void Apollo::set_beta1(double beta1) {
  Optimizer::set_beta1(beta1);
  low_rank_.beta1 = static_cast<float>(beta1);
}

// Basis number `draw` (0-based) of its parameter. random: torch.randn from a CPU generator seeded
// with the seed apollo_torch chains from the parameter's first by next_seed, one link a draw, over
// sqrt(rank); svd: the clipped gradient's singular vectors (clipping changes none).
void Apollo::refresh_basis(Slot& slot, const Tensor& grad, int64_t draw) {
  const Shape& shape = slot.projector.shape();
  std::vector<float> basis;
  if (apollo_.basis == ApolloBasis::svd) {
    basis = galore_basis(thin_svd(HostMatrix{grad.size(0), grad.size(1), grad.to_floats()}), slot.from_right, shape);
  } else {
    for (; slot.bases < draw; slot.bases++) slot.seed = apollo_next_seed(slot.seed);  // a resumed run catches up
    basis = TorchGenerator(static_cast<uint64_t>(slot.seed)).randn(shape_numel(shape));
    const float root_rank = static_cast<float>(std::sqrt(static_cast<double>(apollo_.rank)));
    for (float& x : basis) x /= root_rank;
  }
  slot.projector.copy_from(Tensor::from_floats(basis, shape));
}

// The factors G is scaled by: ||N_j|| / (||R_j|| + 1e-8) over R's rows or columns (channel), or
// over the whole (tensor: one factor), N the normalised and R the projected gradient.
std::vector<float> Apollo::scaling_factors(const Slot& slot, const Tensor& normalised, const Tensor& low_rank) const {
  if (apollo_.scaling == ApolloScaling::tensor) {
    const float n = static_cast<float>(std::sqrt(sum_squares(normalised)));
    const float r = static_cast<float>(std::sqrt(sum_squares(low_rank)));
    return {n / (r + 1e-8f)};
  }
  Backend& be = backend(low_rank.device());
  const int64_t rows = low_rank.size(0), cols = low_rank.size(1);
  const auto channel_squares = [&](const Tensor& x) {
    Tensor out = Tensor::empty({slot.by_rows ? rows : cols}, DType::f32, x.device());
    if (!slot.by_rows) {
      be.column_dot(x, x, out);
      return out.to_floats();
    }
    Tensor squares = Tensor::empty(x.shape(), DType::f32, x.device());
    be.mul(x, x, squares);
    const Tensor ones = Tensor::full({cols, 1}, 1.0f, DType::f32, x.device());
    gemm(matrices(squares), false, matrices(ones), false, out, 1, 0.0f);
    return out.to_floats();
  };
  const std::vector<float> n = channel_squares(normalised), r = channel_squares(low_rank);
  std::vector<float> factors(n.size());
  for (size_t j = 0; j < n.size(); j++) factors[j] = std::sqrt(n[j]) / (std::sqrt(r[j]) + 1e-8f);
  return factors;
}

void Apollo::update(size_t i, Tensor& p, const Tensor& grad, float lr, float clip) {
  Slot& slot = slots_[i];
  const int64_t done = updates_done(i);
  const float own_lr = lr * params_[i].lr_scale;
  if (!slot.projected) {
    AdamWArgs args = old_adamw_args(config_, own_lr, done);
    args.grad_scale = clip;
    slot.moments->update(p, grad, args);
    return;
  }
  LLM_CHECK(grad.dtype() == DType::f32, "Apollo: a projected gradient is f32, not " + grad.str());
  Backend& be = backend(p.device());
  if ((done - 1) % apollo_.update_proj_gap == 0) refresh_basis(slot, grad, (done - 1) / apollo_.update_proj_gap);
  const Tensor& basis = slot.projector;
  Tensor low_rank = Tensor::empty(slot.state_shape, DType::f32, p.device());
  if (slot.from_right) gemm(matrices(grad), false, matrices(basis), true, low_rank, 1, 0.0f, clip);
  else gemm(matrices(basis), true, matrices(grad), false, low_rank, 1, 0.0f, clip);
  // -N, N = m / (sqrt(v) + eps): the old AdamW's step from zero at a step size of 1 (its lr x
  // sqrt(1 - beta2^t) / (1 - beta1^t) multiplies the scaled gradient at the end).
  Tensor normalised = Tensor::zeros(slot.state_shape, DType::f32, p.device());
  AdamWArgs args = old_adamw_args(low_rank_, 1.0f, done);
  args.step_size = 1.0f / args.bias2_sqrt;
  slot.moments->update(normalised, low_rank, args);
  std::vector<float> factors = scaling_factors(slot, normalised, low_rank);
  for (float& f : factors) f *= clip;  // they scale the clipped gradient
  Tensor scaled = Tensor::empty(grad.shape(), DType::f32, p.device());
  if (factors.size() == 1) {
    be.axpby(factors[0], grad, 0.0f, grad, scaled);
  } else {
    const Tensor by = Tensor::from_floats(factors, {static_cast<int64_t>(factors.size())}).to(p.device());
    if (slot.by_rows) be.scale_rows(grad, by, scaled);
    else be.scale_columns(grad, by, scaled);
  }
  // Fira's norm-growth limiter: from its second update on, a scaled gradient whose norm grew more
  // than 1.01-fold over the last one's (as limited) is brought back to that growth.
  const float norm = static_cast<float>(std::sqrt(sum_squares(scaled)));
  float limiter = 1.0f;
  if (done > 1) {
    const float growth = norm / (slot.scaled_grad_norm.to_floats()[0] + 1e-8f);
    if (growth > 1.01f) limiter = growth / 1.01f;
  }
  slot.scaled_grad_norm.copy_from(Tensor::from_floats({norm / limiter}, {1}));
  const double bias1 = 1.0 - std::pow(static_cast<double>(low_rank_.beta1), static_cast<double>(done));
  const double bias2 = 1.0 - std::pow(static_cast<double>(low_rank_.beta2), static_cast<double>(done));
  const double step = own_lr * std::sqrt(bias2) / bias1 * std::sqrt(static_cast<double>(apollo_.scale)) / limiter;
  be.axpby(-static_cast<float>(step), scaled, 1.0f, p, p);
}

size_t Apollo::state_bytes() const {
  size_t bytes = 0;
  for (const Slot& s : slots_) {
    bytes += s.moments->bytes();
    if (s.projected) bytes += s.projector.nbytes() + s.scaled_grad_norm.nbytes();
  }
  return bytes;
}

std::string Apollo::describe() const {
  int64_t projected = 0;
  for (const Slot& s : slots_) projected += s.projected;
  return fmt::format("APOLLO (transformers' old AdamW, f32 moments; no decay): {} matrices projected to rank {} by {} "
                     "bases every {} updates, {}-wise scaling, sqrt(scale) {:g}, norm-growth limit 1.01{}",
                     projected, apollo_.rank, apollo_.basis == ApolloBasis::svd ? "SVD" : "random",
                     apollo_.update_proj_gap, apollo_.scaling == ApolloScaling::tensor ? "tensor" : "channel",
                     std::sqrt(apollo_.scale), layerwise_note());
}

std::string Apollo::state_format() const {
  const char* sides[] = {"std", "reverse_std", "right", "left"};
  return fmt::format("APOLLO AdamW, rank {}, {}, {} basis, {} scaling", apollo_.rank,
                     sides[static_cast<int>(apollo_.side)], apollo_.basis == ApolloBasis::svd ? "svd" : "random",
                     apollo_.scaling == ApolloScaling::tensor ? "tensor" : "channel");
}

std::vector<TensorEntry> Apollo::state_table() const {
  std::vector<TensorEntry> out;
  for (size_t i = 0; i < params_.size(); i++) {
    const Slot& s = slots_[i];
    for (TensorEntry& e : moment_table(params_[i].name, s.state_shape, false)) out.push_back(std::move(e));
    if (!s.projected) continue;
    out.push_back({params_[i].name + ".apollo_projector", DType::f32, s.projector.shape()});
    out.push_back({params_[i].name + ".apollo_scaled_grad_norm", DType::f32, {1}});
  }
  return out;
}

void Apollo::export_state(const TensorSink& put) {
  for (size_t i = 0; i < params_.size(); i++) {
    const Slot& s = slots_[i];
    s.moments->export_to(put, params_[i].name, s.state_shape);
    if (!s.projected) continue;
    put(params_[i].name + ".apollo_projector", s.projector);
    put(params_[i].name + ".apollo_scaled_grad_norm", s.scaled_grad_norm);
  }
}

}  // namespace llm
