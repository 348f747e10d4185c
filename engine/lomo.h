// LOMO (Lv et al. 2023, "Full Parameter Fine-tuning for Large Language Models with Limited
// Resources"), as the lomo_optim package (0.1.1) runs it under transformers' `optim: lomo`: plain
// SGD at the schedule's rate, each parameter updated in backward as soon as its gradient is
// complete and that gradient dropped, so no optimizer state and no whole set of gradients ever
// exist. transformers hands it the rate alone: no decay, no clipping (lomo_optim clips only when
// given clip_grad_norm, which costs a second backward). Every micro-batch's backward updates (an
// accumulated step is several SGD updates, each on its micro-batch's share of the loss). For
// world size 1.
#pragma once
#include <vector>

#include "engine/optimizer.h"

namespace llm {

class Lomo final : public Optimizer {
 public:
  explicit Lomo(std::vector<OptimParam> params);
  // The updates of one backward pass at `lr` (f32 parameters: p -= lr g). A gradient that is not
  // finite updates nothing (its parameter keeps its weights); the others update.
  bool updates_in_backward() const override { return true; }
  LeafReadyHook pass_updates(float lr) override;
  // The step's updates were made in backward: the root of the summed squares of the gradients
  // they used, over every micro-batch's pass (non-finite when one was); max_norm unused.
  double step(float lr, double max_norm = 0.0, bool update = true) override;
  size_t state_bytes() const override { return 0; }
  size_t unsharded_state_bytes() const override { return 0; }
  std::string describe() const override;
  std::string state_format() const override { return "LOMO"; }
  std::vector<TensorEntry> state_table() const override { return {}; }
  void export_state(const TensorSink& /*put*/) override {}

 private:
  std::vector<OptimParam> params_;
};

}  // namespace llm
