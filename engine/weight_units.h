// How a model's forward reaches weights that are not always resident (ZeRO-3's sharded weights,
// engine/sharded_weights.h). Unit 0 is the embedding, final norm and lm_head (before the first
// block through to the loss); unit i + 1 is transformer block i.
#pragma once
#include "engine/tensor.h"

namespace llm {

class WeightUnits {
 public:
  virtual ~WeightUnits() = default;
  virtual void before_forward(int unit) = 0;  // the unit's weights whole from here
  // After the unit's forward made `out`: frees the unit unless a backward will re-run it at once
  // (a recompute segment); when gradients are being recorded, returns `out` through an identity
  // node whose backward gathers the unit again before the unit's own backward runs.
  virtual Tensor after_forward(int unit, const Tensor& out) = 0;
};

}  // namespace llm
