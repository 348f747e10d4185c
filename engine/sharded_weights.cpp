// defines: ShardedWeights (ZeRO-3: weights gathered per unit just in time, released after)
#include "engine/sharded_weights.h"

#include "engine/autograd.h"
#include "engine/check.h"

namespace llm {

ShardedWeights::ShardedWeights(GradBuckets& buckets, ShardedAdamW& optimizer)
    : buckets_(buckets), optimizer_(optimizer) {
  LLM_CHECK(buckets_.reduces_every_pass(), "ZeRO-3 needs gradient buckets in units mode");
  optimizer_.keep_weights_sharded();
  for (const GradBucket& b : buckets_.buckets()) {
    Tensor flat = Tensor::empty({b.padded}, DType::f32, b.device);
    flat.release_storage();  // its bytes come with the unit's first gather
    for (size_t j = 0; j < b.params.size(); j++) {
      Tensor& weight = *b.params[j];
      Tensor view = flat.narrow(0, b.offsets[j], weight.numel()).reshape(weight.shape());
      view.set_autograd_meta(weight.autograd_meta());  // the same leaf to autograd and the buckets
      weight = view;  // the whole weight's own storage goes with its last reference
    }
    flats_.push_back(flat);
  }
}

void ShardedWeights::gather(int unit) {
  Tensor& flat = flats_.at(unit);
  if (flat.storage_resident()) return;
  flat.reacquire_storage();
  // On the host this all-gather blocks. On a GPU it is queued on the communication stream
  // (DeviceCollectives) after the compute so far; prefetching would start unit + 1's all-gather
  // here, into its own flat buffer, so that it runs during this unit's forward (and unit - 1's
  // during backward), and order the compute of unit + 1 after it with DeviceCollectives::wait().
  optimizer_.gather_master(unit, flat);
}

void ShardedWeights::release(int unit) { flats_.at(unit).release_storage(); }

Tensor ShardedWeights::after_forward(int unit, const Tensor& out) {
  // A recompute segment's re-run inside backward: its own backward follows at once and needs the
  // weights; GradBuckets frees them once their gradients are reduced.
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

void ShardedWeights::gather_all() {
  for (size_t unit = 0; unit < buckets_.buckets().size(); unit++) gather(static_cast<int>(unit));
}

void ShardedWeights::release_all() {
  for (size_t unit = 0; unit < buckets_.buckets().size(); unit++) release(static_cast<int>(unit));
}

}  // namespace llm
