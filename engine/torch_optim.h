// torch.optim's SGD, Adagrad and RMSprop as an Optimizer (engine/torch_optim_math.h has their
// updates), as transformers builds them for `optimizer: sgd | adagrad | rmsprop` (and bitsandbytes'
// RMSprop for rmsprop_bnb*, the same update, its square_avg f32 or 8-bit): the Trainer's lr
// and parameter groups (its weight decay on the decayed group, added to the gradient as torch's L2
// decay), the rest from optim_args. f32 state per parameter only where the settings use it; for
// world size 1 or data parallel without ZeRO.
#pragma once
#include <array>
#include <vector>

#include "engine/optimizer.h"
#include "engine/torch_optim_math.h"

namespace llm {

// torch's defaults; each from the config's doubles, as torch's Python floats.
struct TorchOptimConfig {
  TorchOptimKind kind = TorchOptimKind::sgd;
  double weight_decay = 0.0;                 // the decayed group's (TrainingArguments' weight_decay)
  double momentum = 0.0, dampening = 0.0;    // SGD (momentum: RMSprop's too)
  bool nesterov = false;                     // SGD
  double lr_decay = 0.0, eps = 1e-10;        // Adagrad (eps: RMSprop's default is 1e-8)
  double alpha = 0.99;                       // RMSprop
  bool centered = false;                     // RMSprop
  // bitsandbytes' RMSprop 8-bit (rmsprop_bnb_8bit): square_avg as blockwise 8-bit codes on the
  // signed dynamic map, for tensors of kMin8bitSize elements or more but the token embedding, whose
  // state transformers keeps in f32 (no momentum, not centered).
  bool blockwise_8bit = false;
  // torch's OneCycleLR (one_cycle with cycle_momentum) sets SGD's and RMSprop's momentum before
  // every update (set_beta1), from 0.85 to 0.95: their momentum buffer is kept from the start.
  bool cycled_momentum = false;
};

// The state tensors (torch's names, s[0..2] of torch_optim_element) these settings keep per
// parameter; "" where none (SGD without momentum keeps nothing).
std::array<std::string, 3> torch_optim_state_names(const TorchOptimConfig& config);

class TorchOptimizer final : public Optimizer {
 public:
  TorchOptimizer(std::vector<OptimParam> params, const TorchOptimConfig& config);
  void set_beta1(double momentum) override;  // one_cycle's, as OneCycleLR sets group["momentum"]
  // Each parameter's own step count (torch's state["step"]: Adagrad's lr decay, SGD's first
  // buffer): LISA's frozen layers miss updates.
  double step(float lr, double max_norm = 0.0, bool update = true) override;
  size_t state_bytes() const override;
  size_t unsharded_state_bytes() const override { return state_bytes(); }
  std::string describe() const override;
  std::string state_format() const override;
  // torch's state keys: "<param>.momentum_buffer" (SGD, RMSprop), "<param>.sum" (Adagrad),
  // "<param>.square_avg" and "<param>.grad_avg" (RMSprop), each f32 of the parameter's shape; an
  // 8-bit square_avg as "<param>.square_avg.codes" (u8) and ".absmax" (f32).
  std::vector<TensorEntry> state_table() const override;
  void export_state(const TensorSink& put) override;

 private:
  bool quantised(const OptimParam& p) const;  // keeps an 8-bit square_avg

  std::vector<OptimParam> params_;
  TorchOptimConfig torch_;
  std::vector<std::array<Tensor, 3>> state_;
  std::vector<Tensor> absmax_;  // of an 8-bit square_avg (its codes in state_[i][0]); else undefined
};

}  // namespace llm
