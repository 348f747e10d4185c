// ADOPT as an Optimizer (engine/adopt_math.h has its update rule): f32 m and v per parameter on
// its own device, for world size 1 or data parallel without ZeRO (ZeRO's sharded optimizer is
// AdamW's only, engine/sharded_adamw.h).
#pragma once
#include <vector>

#include "engine/optimizer.h"

namespace llm {

// The reference's defaults (betas 0.9 / 0.9999, eps 1e-6) are the caller's to pass: Axolotl
// passes the config's Adam settings only when they are given.
class Adopt final : public Optimizer {
 public:
  Adopt(std::vector<OptimParam> params, AdamWConfig config);
  double step(float lr, double max_norm = 0.0, bool update = true) override;
  size_t state_bytes() const override;
  size_t unsharded_state_bytes() const override { return state_bytes(); }
  std::string describe() const override { return "ADOPT (f32 moments)"; }
  std::string state_format() const override { return "ADOPT"; }
  // "<param>.exp_avg" and "<param>.exp_avg_sq", as AdamW's f32 state (moment_table).
  std::vector<TensorEntry> state_table() const override;
  void export_state(const TensorSink& put) override;

 private:
  std::vector<OptimParam> params_;
  std::vector<Tensor> m_, v_;  // f32, each its parameter's shape
};

}  // namespace llm
