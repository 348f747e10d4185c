// Adafactor as an Optimizer (engine/adafactor_math.h has its update rule): a matrix keeps f32
// running means of g^2 per row and per column, a vector per element, each on its parameter's
// device; world size 1 or data parallel without ZeRO (ZeRO's sharded optimizer is AdamW's).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "engine/adafactor_math.h"
#include "engine/optimizer.h"

namespace llm {

// transformers' per-parameter constants of update number `step` (1-based) at `lr`, in double as
// its Python computes them; weight_decay 0 for a parameter that takes none.
AdafactorArgs adafactor_args(double lr, int64_t step, double weight_decay);
// Its state tensors of a parameter: "<param>.exp_avg_sq_row" and "<param>.exp_avg_sq_col" of a
// matrix (transformers' names, f32 of its rows and of its columns), "<param>.exp_avg_sq" of a vector.
std::vector<TensorEntry> adafactor_state_table(const std::string& param, const Shape& shape);

// Takes AdamWConfig's weight decay only: the Trainer builds Adafactor from lr and the groups'
// decay, with transformers' own defaults for the rest.
// With `adalomo`: AdaLomo (Lv et al. 2023), as lomo_optim 0.1.1's AdaLomo under transformers'
// `optim: adalomo`: the same update made in backward as each gradient completes (pass_updates;
// every micro-batch's pass counts one step of the decay rate, for every parameter), at the rate
// times max(1e-3, the parameter's RMS before it), no decay (transformers hands it the rate alone)
// and no clipping; step() then returns the norm of the gradients the step's passes used.
class Adafactor final : public Optimizer {
 public:
  Adafactor(std::vector<OptimParam> params, AdamWConfig config, bool adalomo = false);
  // A parameter without a gradient is left as it is and misses the update (its decay rate counts
  // its own updates, as the Trainer's per-parameter step).
  double step(float lr, double max_norm = 0.0, bool update = true) override;
  bool updates_in_backward() const override { return adalomo_; }
  LeafReadyHook pass_updates(float lr) override;
  size_t state_bytes() const override;
  size_t unsharded_state_bytes() const override { return state_bytes(); }
  std::string describe() const override;
  std::string state_format() const override { return adalomo_ ? "AdaLomo" : "Adafactor"; }
  // AdaLomo's count of passes (its decay rate's step), as "adalomo_passes".
  std::map<std::string, std::string> scalar_state() const override;
  void restore_scalar_state(const std::map<std::string, std::string>& metadata) override;
  // "<param>.exp_avg_sq_row" and "<param>.exp_avg_sq_col" of a matrix (transformers' names),
  // "<param>.exp_avg_sq" of a vector.
  std::vector<TensorEntry> state_table() const override;
  void export_state(const TensorSink& put) override;

 private:
  struct Averages {
    Tensor row, col;  // col undefined for a vector, whose row is its own shape
  };
  std::vector<OptimParam> params_;
  std::vector<Averages> averages_;
  bool adalomo_ = false;
  int64_t passes_ = 0;  // AdaLomo: backward passes so far (lomo_optim's step_num)
};

}  // namespace llm
