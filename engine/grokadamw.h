// GrokAdamW (the grokadamw package, 0.1.2) as transformers' `grokadamw` builds it: AdamW on the
// gradient amplified by its own slow EMA (Grokfast's idea: g + lamb x EMA_alpha(g)), each tensor's
// gradient first clipped to its own norm, beta1 shrunk by (1 - gamma)^i for the i-th tensor with a
// gradient in its parameter group (the bias correction keeps beta1), eps added to sqrt(v) before
// the bias correction and the decay before the step. Its grokking signal needs loss callbacks the
// Trainer never passes, so alpha stays alpha_init. For world size 1 or data parallel without ZeRO.
#pragma once
#include <string>
#include <vector>

#include "engine/optimizer.h"

namespace llm {

struct GrokAdamWConfig {
  float alpha_init = 0.98f;        // the EMA's keep rate
  float lamb = 2.0f;               // the amplification of the EMA added to the gradient
  float gamma = 0.1f;              // beta1 x (1 - gamma)^i for a group's i-th tensor
  float gradient_clipping = 1.0f;  // each tensor's gradient norm at most this (0: none)
};

class GrokAdamW final : public Optimizer {
 public:
  // params[i].decay names its group (the Trainer's two: decayed, not decayed), in which a tensor's
  // position with a gradient sets its beta1. One host read a tensor (its norm) when clipping.
  GrokAdamW(std::vector<OptimParam> params, AdamWConfig config, GrokAdamWConfig grok);
  double step(float lr, double max_norm = 0.0, bool update = true) override;
  size_t state_bytes() const override;
  size_t unsharded_state_bytes() const override { return state_bytes(); }
  std::string describe() const override;
  std::string state_format() const override { return "GrokAdamW"; }
  // "<param>.exp_avg", "<param>.exp_avg_sq" (moment_table) and "<param>.grok_ema", f32.
  std::vector<TensorEntry> state_table() const override;
  void export_state(const TensorSink& put) override;

 private:
  std::vector<OptimParam> params_;
  std::vector<AdamWMoments> moments_;  // f32 m and v
  std::vector<Tensor> ema_;
  GrokAdamWConfig grok_;
};

}  // namespace llm
