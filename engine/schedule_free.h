// Schedule-Free AdamW, RAdam and SGD as an Optimizer (engine/schedule_free_math.h has the update):
// per parameter f32 z (and v for the Adam variants) on its own device, for world size 1 or data
// parallel without ZeRO (ZeRO's sharded optimizer is AdamW's, engine/sharded_adamw.h).
//
// The parameter holds y while training and x while evaluating, as the reference's train() and
// eval() switch it and transformers' Trainer calls them: train() before every training step,
// eval() before every evaluation. Checkpoints keep the parameter as it stands, with the mode.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "engine/optimizer.h"

namespace llm {

enum class ScheduleFreeKind { adamw, radam, sgd };

// The reference's settings, in doubles as Python computes its step constants (1 - beta2 from an
// f32 beta2 is 1.3e-5 off). transformers hands AdamW and RAdam the Trainer's Adam betas and eps,
// SGD none (its momentum 0.9), every variant weight_decay, weight_lr_power and r (optim_args),
// and AdamW and SGD the Trainer's warmup_steps (their own warmup, on top of the schedule's).
struct ScheduleFreeConfig {
  ScheduleFreeKind kind = ScheduleFreeKind::adamw;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // beta1: SGD's momentum
  double weight_decay = 0.0;
  int64_t warmup_steps = 0;
  double r = 0.0, weight_lr_power = 2.0;
};

class ScheduleFree final : public Optimizer {
 public:
  ScheduleFree(std::vector<OptimParam> params, const ScheduleFreeConfig& config);
  void set_beta1(double beta1) override;  // one_cycle cycles beta1 (SGD's momentum)
  void set_warmup_steps(int64_t steps) { sf_.warmup_steps = steps; }  // known once the run's steps are
  // A parameter without a gradient (LISA's frozen layers) is left as it is, as the reference
  // skips it; the step count and the average's weights are the group's, counted anyway.
  double step(float lr, double max_norm = 0.0, bool update = true) override;
  void set_training(bool training) override;
  size_t state_bytes() const override;
  size_t unsharded_state_bytes() const override { return state_bytes(); }
  std::string describe() const override;
  std::string state_format() const override;
  // "<param>.z" and, for AdamW and RAdam, "<param>.exp_avg_sq" (f32, the parameter's shape).
  std::vector<TensorEntry> state_table() const override;
  void export_state(const TensorSink& put) override;
  // lr_max, weight_sum (the average's running weights) and train_mode.
  std::map<std::string, std::string> scalar_state() const override;
  void restore_scalar_state(const std::map<std::string, std::string>& metadata) override;

 private:
  // This step's lr and whether the gradient is normalised (RAdam's rectification).
  double scheduled_lr(double lr, bool& normalise) const;

  std::vector<OptimParam> params_;
  ScheduleFreeConfig sf_;
  std::vector<Tensor> z_, v_;  // f32; v_ empty for SGD
  double lr_max_ = -1.0, weight_sum_ = 0.0;
  bool training_ = false;  // the reference starts in eval mode (x = y = z before any step)
};

}  // namespace llm
