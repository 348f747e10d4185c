// StableAdamW (Wortsman et al. 2023, "Stable and low-precision training for large-scale
// vision-language models"), as torch-optimi's StableAdamW runs it under transformers'
// `stable_adamw`: AdamW whose learning rate for each tensor is divided by max(1, RMS), RMS the
// root of the tensor's mean of g^2 / max(v_hat, eps^2) after this update's g (AdaFactor's update
// clipping, per tensor); the decay uses the divided rate too. For world size 1 or data parallel
// without ZeRO.
#pragma once
#include <string>
#include <vector>

#include "engine/optimizer.h"

namespace llm {

struct StableAdamWConfig {
  // optim_args' decouple_lr: the decay is weight_decay x lr / max_lr (the schedule's rate over its
  // peak) instead of weight_decay x lr; max_lr the peak, or optim_args' max_lr.
  bool decouple_lr = false;
  float max_lr = 0.0f;
};

class StableAdamW final : public Optimizer {
 public:
  StableAdamW(std::vector<OptimParam> params, AdamWConfig config, StableAdamWConfig stable);
  // One host read a parameter (its RMS), as torch-optimi's .item().
  double step(float lr, double max_norm = 0.0, bool update = true) override;
  size_t state_bytes() const override;
  size_t unsharded_state_bytes() const override { return state_bytes(); }
  std::string describe() const override;
  std::string state_format() const override { return "StableAdamW"; }
  // AdamW's f32 moments (moment_table); torch-optimi keeps them debiased, which changes roundings only.
  std::vector<TensorEntry> state_table() const override;
  void export_state(const TensorSink& put) override;

 private:
  std::vector<OptimParam> params_;
  std::vector<AdamWMoments> moments_;
  StableAdamWConfig stable_;
};

}  // namespace llm
