// defines: ShardedWeights (ZeRO-3: weights gathered per unit just in time, released after)
#include "engine/sharded_weights.h"

#include "engine/check.h"

namespace llm {

ShardedWeights::ShardedWeights(Communicator& comm, GradBuckets& buckets, ShardedAdamW& optimizer)
    : WeightUnits(comm), buckets_(buckets), optimizer_(optimizer) {
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

void ShardedWeights::keep_slice(const Tensor* weight, const Tensor& whole) {
  LLM_CHECK(whole.shape() == weight->shape(), "keep_slice: " + whole.str() + " for a weight of shape " +
                                                  shape_str(weight->shape()));
  const Tensor flat = whole.contiguous().reshape({whole.numel()});
  keep_slice(weight, [&flat](int64_t begin, int64_t count) { return flat.narrow(0, begin, count); });
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
