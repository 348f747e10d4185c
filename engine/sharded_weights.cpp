// defines: ShardedWeights (ZeRO-3: weights gathered per unit just in time, released after)
#include "engine/sharded_weights.h"

#include "engine/check.h"

namespace llm {

ShardedWeights::ShardedWeights(GradBuckets& buckets, ShardedAdamW& optimizer)
    : buckets_(buckets), optimizer_(optimizer) {
  LLM_CHECK(buckets_.reduces_every_pass(), "ZeRO-3 needs gradient buckets in units mode");
  optimizer_.keep_weights_sharded();
  for (const GradBucket& b : buckets_.buckets()) {
    Tensor flat = Tensor::released({b.padded}, DType::f32, b.device);  // bytes at the unit's first gather
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

}  // namespace llm
