// defines: WeightUnits::after_forward, gather_all, release_all (what ZeRO-3's two kinds of
// sharded weights do alike around a unit's forward)
#include "engine/weight_units.h"

#include "engine/autograd.h"

namespace llm {

Tensor WeightUnits::after_forward(int unit, const Tensor& out) {
  // A recompute segment's re-run inside backward: its own backward follows at once and needs the
  // weights; they are released after it (GradBuckets once the gradients are reduced, or
  // FrozenShards' hook).
  if (in_backward()) return out;
  release(unit);
  if (!grad_enabled() || !out.requires_grad()) return out;
  // An identity whose backward runs just before the unit's own backward nodes (the tape runs
  // newest first): the weights come back for them.
  Tensor same = out.detach();
  record_node("gather_weights", {out}, {&same}, [this, unit](const Grads& grads) {
    gather(unit);
    return grads;
  });
  return same;
}

void WeightUnits::gather_all() {
  for (int unit = 0; unit < num_units(); unit++) gather(unit);
}

void WeightUnits::release_all() {
  for (int unit = 0; unit < num_units(); unit++) release(unit);
}

}  // namespace llm
