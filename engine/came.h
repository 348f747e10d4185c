// CAME as an Optimizer (engine/came_math.h has its update rule): m in f32 beside each parameter, a
// matrix's second moment and instability factored into f32 row and column means, a vector's
// second moment per element; world size 1 or data parallel without ZeRO (ZeRO's sharded
// optimizer is AdamW's).
#pragma once
#include <vector>

#include "engine/backend.h"
#include "engine/optimizer.h"

namespace llm {

// CAME's rates as the config gives them, in double: came_pytorch's Python floats, whose
// complements (1 - beta2: 0.001 from 0.999) torch rounds to f32 only then; the complement of an
// f32-rounded 0.999 is 1.3e-5 off, which no bias correction cancels here. AdamWConfig gives eps1
// (its eps) and the weight decay.
struct CameConfig {
  double beta1 = 0.9, beta2 = 0.999, beta3 = 0.9999;
  double eps2 = 1e-16;
  double clip_threshold = 1.0;  // the update's RMS is clipped to it
};

class Came final : public Optimizer {
 public:
  Came(std::vector<OptimParam> params, AdamWConfig config, CameConfig came);
  void set_beta1(double beta1) override;  // one_cycle's
  // A parameter without a gradient is left as it is (CAME keeps no step count).
  double step(float lr, double max_norm = 0.0, bool update = true) override;
  size_t state_bytes() const override;
  size_t unsharded_state_bytes() const override { return state_bytes(); }
  std::string describe() const override { return "CAME (f32 first moment, factored second moment and instability)"; }
  std::string state_format() const override { return "CAME"; }
  // came_pytorch's names: "<param>.exp_avg"; a matrix's "<param>.exp_avg_sq_row", "_sq_col",
  // "_res_row" and "_res_col", a vector's "<param>.exp_avg_sq".
  std::vector<TensorEntry> state_table() const override;
  void export_state(const TensorSink& put) override;

 private:
  struct State {
    Tensor m;
    FactoredMoment second, instability;  // instability undefined for a vector
  };
  // A state's tensors in state_table's order.
  static std::vector<Tensor*> tensors_of(State& s, bool factored_shape);
  std::vector<OptimParam> params_;
  std::vector<State> states_;
  CameConfig came_;
};

}  // namespace llm
