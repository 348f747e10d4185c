// How a model's forward reaches weights that are not always resident (ZeRO-3: trained weights in
// engine/sharded_weights.h, an adapter run's frozen base in engine/frozen_shards.h). Unit 0 is
// the embedding, final norm and lm_head (before the first block through to the loss); unit i + 1
// is transformer block i.
#pragma once
#include "engine/tensor.h"

namespace llm {

class WeightUnits {
 public:
  virtual ~WeightUnits() = default;
  virtual void before_forward(int unit) { gather(unit); }  // the unit's weights whole from here
  // After the unit's forward made `out`: frees the unit unless a backward will re-run it at once
  // (a recompute segment); when gradients are being recorded, returns `out` through an identity
  // node whose backward gathers the unit again before the unit's own backward runs.
  Tensor after_forward(int unit, const Tensor& out);
  // Every unit whole (for a checkpoint, a restore, the final export), and back to slices. Collective.
  void gather_all();
  void release_all();

 protected:
  virtual int num_units() const = 0;
  virtual void gather(int unit) = 0;  // collective; nothing when already resident
  virtual void release(int unit) = 0;
};

}  // namespace llm
