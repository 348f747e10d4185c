// Adafactor as an Optimizer (engine/adafactor_math.h has its update rule): a matrix keeps f32
// running means of g^2 per row and per column, a vector per element, each on its parameter's
// device; world size 1 or data parallel without ZeRO (ZeRO's sharded optimizer is AdamW's).
#pragma once
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
class Adafactor final : public Optimizer {
 public:
  Adafactor(std::vector<OptimParam> params, AdamWConfig config);
  // A parameter without a gradient is left as it is and misses the update (its decay rate counts
  // its own updates, as the Trainer's per-parameter step).
  double step(float lr, double max_norm = 0.0, bool update = true) override;
  size_t state_bytes() const override;
  size_t unsharded_state_bytes() const override { return state_bytes(); }
  std::string describe() const override { return "Adafactor (f32 factored second moments)"; }
  std::string state_format() const override { return "Adafactor"; }
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
};

}  // namespace llm
