// defines: LowRankOptimizer and the projection shapes and bases (see the header)
#include "engine/low_rank_optimizer.h"

#include <algorithm>
#include <cmath>

namespace llm {

bool projects_from_right(const Shape& w, GaloreSide side) {
  switch (side) {
    case GaloreSide::std_side: return w[0] >= w[1];
    case GaloreSide::reverse_std: return w[0] < w[1];
    case GaloreSide::right: return true;
    case GaloreSide::left: return false;
  }
  return true;
}

Shape low_rank_shape(const Shape& w, GaloreSide side, int64_t rank) {
  return projects_from_right(w, side) ? Shape{w[0], rank} : Shape{rank, w[1]};
}

Shape projector_shape(const Shape& w, GaloreSide side, int64_t rank) {
  return projects_from_right(w, side) ? Shape{rank, w[1]} : Shape{w[0], rank};
}

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

AdamWArgs old_adamw_args(const AdamWConfig& config, float lr, int64_t t) {
  AdamWArgs args = adamw_args(config, lr, t, /*decay=*/false);
  args.eps /= args.bias2_sqrt;
  return args;
}

LowRankOptimizer::LowRankOptimizer(std::vector<OptimParam> params, AdamWConfig config, bool layerwise)
    : Optimizer(config), params_(std::move(params)), layerwise_(layerwise) {
  missed_.assign(params_.size(), 0);
}

double LowRankOptimizer::step(float lr, double max_norm, bool update_now) {
  if (!layerwise_)
    return each_update(params_, max_norm, update_now, [&](size_t i, Tensor& p, const Tensor& grad, float clip) {
      update(i, p, grad, lr, clip);
    });
  // Its one pass made the updates; a parameter it did not update (no gradient, or a non-finite one) missed one.
  if (updated_.empty()) return 0.0;  // no pass since the last step
  for (size_t i = 0; i < params_.size(); i++)
    if (!updated_[i]) missed_[i]++;
  updated_.clear();
  return take_backward_norm();
}

// As transformers' layer-wise hook: parameter i's optimizer steps (its count of updates, and so
// its schedule, advancing with it) once its gradient is complete, and the gradient is dropped.
LeafReadyHook LowRankOptimizer::pass_updates(float lr) {
  if (!layerwise_) return {};
  t_++;
  updated_.assign(params_.size(), false);
  return updates_as_gradients_complete(params_, [this, lr](size_t i, Tensor& p, const Tensor& grad) {
    update(i, p, grad, lr, 1.0f);
    updated_[i] = true;
  });
}

std::string LowRankOptimizer::layerwise_note() const {
  return layerwise_ ? "; layer-wise: each parameter updated in backward as its gradient completes, unclipped, its "
                      "gradient then dropped"
                    : "";
}

}  // namespace llm
