// defines: GaloreSide, projects_from_right, low_rank_shape, projector_shape, galore_basis,
// old_adamw_args, LowRankOptimizer: what GaLore (engine/galore.h) and APOLLO (engine/apollo.h)
// share. Both take a matrix's gradient G (m x n) to rank r through a basis refreshed every
// update_proj_gap of the matrix's own updates, keep their optimizer state in that low-rank space,
// and run the other parameters unprojected; both come as transformers builds them, stepped after
// backward or layer-wise (each parameter updated in backward as its gradient completes).
#pragma once
#include <string>
#include <vector>

#include "engine/linalg.h"
#include "engine/optimizer.h"

namespace llm {

// Which side of G its basis multiplies: galore_torch's (and apollo_torch's) proj_type. std
// projects a tall (or square) G from the right (G P^T, P r x n) and a wide G from the left
// (Q^T G, Q m x r); reverse_std the other way round; right and left always that side.
enum class GaloreSide { std_side, reverse_std, right, left };

bool projects_from_right(const Shape& weight, GaloreSide side);
// The projected gradient's shape (m x r from the right, r x n from the left) and the basis'.
Shape low_rank_shape(const Shape& weight, GaloreSide side, int64_t rank);
Shape projector_shape(const Shape& weight, GaloreSide side, int64_t rank);

// The basis galore_torch slices from a gradient's SVD, `basis`'s shape: the top right singular
// vectors as rows (from_right: r x n) or the top left ones as columns (m x r), each signed so that
// its largest element (the first of equal ones) is positive. A singular vector's sign is its
// LAPACK's choice (MKL's under torch's CPU wheels, cuSOLVER's on a GPU, OpenBLAS's here, each its
// own), and it shows once a recomputed basis meets the moments of the last one: a fixed choice
// makes a run the same on any LAPACK.
std::vector<float> galore_basis(const ThinSvd& svd, bool from_right, const Shape& basis);

// transformers' old AdamW, which galore_torch and apollo_torch carry: eps added to sqrt(v) before
// the bias correction. AdamW's update with eps / sqrt(1 - beta2^t) in eps's place is its
// lr sqrt(1 - beta2^t) / (1 - beta1^t) m / (sqrt(v) + eps); no decay (the caller's).
AdamWArgs old_adamw_args(const AdamWConfig& config, float lr, int64_t t);

// The frame of a per-parameter low-rank optimizer: update(i, ...) for each parameter with a
// gradient, after backward (clipped, from step()) or layer-wise in backward (unclipped, from
// pass_updates' hook), each parameter counting its own updates.
class LowRankOptimizer : public Optimizer {
 public:
  double step(float lr, double max_norm = 0.0, bool update = true) final;
  // Layer-wise (one pass a step): a parameter whose gradient is not finite keeps its weights and
  // state (as a whole step with a non-finite norm would), the others update; step() then returns
  // a non-finite norm.
  bool updates_in_backward() const final { return layerwise_; }
  LeafReadyHook pass_updates(float lr) final;
  size_t unsharded_state_bytes() const final { return state_bytes(); }

 protected:
  LowRankOptimizer(std::vector<OptimParam> params, AdamWConfig config, bool layerwise);
  // One update of parameter i from grad x clip at schedule rate lr.
  virtual void update(size_t i, Tensor& param, const Tensor& grad, float lr, float clip) = 0;
  int64_t updates_done(size_t i) const { return t_ - missed_[i]; }  // this parameter's, this one included
  std::vector<OptimParam> params_;
  bool layerwise_;
  // "; layer-wise: ..." for describe(), or "".
  std::string layerwise_note() const;

 private:
  std::vector<bool> updated_;  // layer-wise: by parameter, in the step's pass (empty before it)
};

}  // namespace llm
