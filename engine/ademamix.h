// AdEMAMix as an Optimizer (engine/ademamix_math.h has its update rule): three moments per
// parameter on its own device, f32 or bitsandbytes' blockwise 8-bit (tensors under kMin8bitSize
// elements, and f32_state ones, f32), for world size 1 or data parallel without ZeRO.
#pragma once
#include <vector>

#include "engine/optimizer.h"

namespace llm {

// AdEMAMix's own settings beside AdamWConfig's beta1, beta2, eps and weight decay: the slow
// EMA's beta3 and its weight alpha, each warmed up over t_beta3 / t_alpha updates when > 0 (as
// bitsandbytes schedules them), constant otherwise.
struct AdemamixConfig {
  float beta3 = 0.9999f, alpha = 5.0f;
  int64_t t_beta3 = 0, t_alpha = 0;
};

class AdEMAMix final : public Optimizer {
 public:
  AdEMAMix(std::vector<OptimParam> params, AdamWConfig config, AdemamixConfig mix, AdamWState state = AdamWState::f32);
  // A parameter without a gradient is left as it is; its bias corrections and schedules count
  // its own updates (missed_updates).
  double step(float lr, double max_norm = 0.0, bool update = true) override;
  size_t state_bytes() const override;
  size_t unsharded_state_bytes() const override { return state_bytes(); }
  std::string describe() const override;
  std::string state_format() const override { return state_format_of("AdEMAMix", state_); }
  // "<param>.exp_avg" (m1), "<param>.exp_avg_slow" (m2), "<param>.exp_avg_sq" (nu); when 8-bit
  // each as "<name>.codes" (u8) and "<name>.absmax" (f32).
  std::vector<TensorEntry> state_table() const override;
  void export_state(const TensorSink& put) override;

 private:
  std::vector<OptimParam> params_;
  std::vector<std::vector<Moment>> moments_;  // m1, m2, nu of each parameter
  AdemamixConfig mix_;
  AdamWState state_;
};

}  // namespace llm
