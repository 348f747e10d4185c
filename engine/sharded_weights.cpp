// defines: ShardedWeights (ZeRO-3: weights gathered per unit just in time, released after)
#include "engine/sharded_weights.h"

#include "engine/check.h"

namespace llm {

ShardedWeights::ShardedWeights(Communicator& comm, GradBuckets& buckets, ShardedAdamW& optimizer)
    : WeightUnits(comm), buckets_(buckets), optimizer_(optimizer) {
  LLM_CHECK(buckets_.reduces_every_pass(), "ZeRO-3 needs gradient buckets in units mode");
  optimizer_.keep_weights_sharded();
  for (const GradBucket& b : buckets_.buckets()) {
    // In the compute copy's dtype (bf16 on a GPU that computes in it): what is gathered and held,
    // with bytes from the unit's first gather on.
    Tensor flat = Tensor::released({b.padded}, optimizer_.weight_dtype(), b.device);
    for (size_t j = 0; j < b.params.size(); j++) {
      Tensor& weight = *b.params[j];
      Tensor view = flat.narrow(0, b.offsets[j], weight.numel()).reshape(weight.shape());
      view.set_autograd_meta(weight.autograd_meta());  // the same leaf to autograd and the buckets
      weight = view;  // the whole weight's own storage goes with its last reference
    }
    flats_.push_back(flat);
  }
}

bool ShardedWeights::resident(int unit) const { return flats_.at(unit).storage_resident(); }

// On the host a non-blocking MPI all-gather; on a GPU queued on the communication stream after
// the compute so far (DeviceCollectives), the compute stream ordered after it by the wait.
Communicator::Request ShardedWeights::start_gather(int unit) {
  Tensor& flat = flats_.at(unit);
  flat.reacquire_storage();
  return optimizer_.start_gather_master(unit, flat);
}

void ShardedWeights::free_unit(int unit) { flats_.at(unit).release_storage(); }

}  // namespace llm
