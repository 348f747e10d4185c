// Lion as an Optimizer (engine/lion_math.h has its update rule): one momentum per parameter on
// its own device, f32 or bitsandbytes' blockwise 8-bit (kept as 8-bit AdamW keeps its first
// moment; tensors under kMin8bitSize elements keep f32), for world size 1 or data parallel
// without ZeRO (ZeRO's sharded optimizer is AdamW's, engine/sharded_adamw.h).
#pragma once
#include <vector>

#include "engine/optimizer.h"

namespace llm {

// Takes AdamWConfig's beta1, beta2 and weight decay (eps unused), as transformers hands
// bitsandbytes' Lion the Trainer's Adam betas.
class Lion final : public Optimizer {
 public:
  Lion(std::vector<OptimParam> params, AdamWConfig config, AdamWState state = AdamWState::f32);
  // A parameter without a gradient is left as it is (LISA's frozen layers): Lion has no bias
  // correction, so it needs no count of the updates it missed.
  double step(float lr, double max_norm = 0.0, bool update = true) override;
  size_t state_bytes() const override;
  size_t unsharded_state_bytes() const override { return state_bytes(); }
  std::string describe() const override;
  std::string state_format() const override { return state_format_of("Lion", state_); }
  // "<param>.exp_avg" (f32), or "<param>.exp_avg.codes" (u8) and "<param>.exp_avg.absmax" (f32).
  std::vector<TensorEntry> state_table() const override;
  void export_state(const TensorSink& put) override;

 private:
  std::vector<OptimParam> params_;
  std::vector<Moment> momenta_;
  AdamWState state_;
};

}  // namespace llm
