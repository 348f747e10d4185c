// AdamW with f32 state, global gradient-norm clipping, and the learning-rate schedules
// (HF's cosine / linear / constant with linear warmup; Axolotl's cosine_min_lr_ratio).
#pragma once
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace llm {

struct AdamWConfig {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float weight_decay = 0.0f;
};

struct OptimParam {
  std::string name;
  Tensor* param;      // updated in place
  bool decay = true;  // false for norm weights
};

class AdamW {
 public:
  AdamW(std::vector<OptimParam> params, AdamWConfig config);
  // One update from the params' accumulated gradients (params without a gradient are skipped).
  void step(float lr);
  int64_t steps_taken() const { return t_; }
  // Moments by name ("<param>.exp_avg", "<param>.exp_avg_sq") and the step count, so a
  // checkpoint can save and restore them exactly.
  std::vector<std::pair<std::string, Tensor*>> state();
  void set_steps_taken(int64_t t) { t_ = t; }
  size_t state_bytes() const;

 private:
  std::vector<OptimParam> params_;
  std::vector<Tensor> m_, v_;
  AdamWConfig config_;
  int64_t t_ = 0;
};

// sqrt(sum of squares) over every gradient; when max_norm > 0 and the norm exceeds it, scales
// all gradients by max_norm / (norm + 1e-6) as torch.nn.utils.clip_grad_norm_. Returns the norm
// before clipping (non-finite when some gradient is).
double clip_grad_norm(const std::vector<Tensor*>& params, double max_norm);

struct LrSchedule {
  std::string kind = "cosine";  // cosine | linear | constant
  double base_lr = 3e-4;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double min_lr_ratio = 0.0;  // cosine floor as a fraction of base_lr
  // The learning rate of update number `step` (0-based), as HF's LambdaLR gives it.
  double lr(int64_t step) const;
};

}  // namespace llm
