// ZeRO-3 / FSDP's full_shard: the weights themselves are sharded. A unit (one transformer block;
// or the embedding with the final norm and lm_head) is one gradient bucket of its own; between
// uses each rank holds only its slice of the unit's f32 weights (ShardedAdamW's master slice).
// As FSDP's flat parameter, a unit's weights are views of one flat buffer in the bucket's layout,
// in the compute copy's dtype (ShardedAdamW::weight_dtype: bf16 as FSDP's param_dtype on a GPU
// that computes in bf16, f32 on the CPU), so a gather is one all-gather in place, each rank
// casting its master slice into its part first. The unit's weights are all-gathered just before its
// forward (or during the previous unit's, prefetched: engine/weight_units.h) and released after
// it; gathered again when backward reaches the unit (or when a recompute segment re-runs it);
// released again once their gradients are complete and reduce-scattered (GradBuckets in units
// mode).
#pragma once
#include <vector>

#include "engine/grad_buckets.h"
#include "engine/sharded_adamw.h"
#include "engine/weight_units.h"

namespace llm {

class ShardedWeights final : public WeightUnits {
 public:
  // `buckets` built in units mode over the model's units (bucket i = unit i), `optimizer` over
  // them (its master slices already taken). Makes each weight a view of its unit's flat buffer,
  // keeping its autograd identity, and frees them all: from here on a rank holds only its slices.
  // The weights may have no bytes already (LlamaModel's constructor without weights): then
  // keep_slice gives each rank its slices, one weight at a time, and no rank ever holds the whole
  // model (a sharded start-up, Axolotl's fsdp_cpu_ram_efficient_loading).
  ShardedWeights(Communicator& comm, GradBuckets& buckets, ShardedAdamW& optimizer);
  // This rank's slices of `weight` (one of the units' weights), each asked of `read`: start-up's
  // initial or loaded weights, made whole one at a time, or a restore's byte ranges of the
  // checkpoint. Not collective.
  void keep_slice(const Tensor* weight, const ShardedAdamW::PartReader& read) { optimizer_.take_master(weight, read); }
  // The same from the weight's whole value (f32, its shape, any device).
  void keep_slice(const Tensor* weight, const Tensor& whole) { optimizer_.take_master(weight, whole); }

 private:
  int num_units() const override { return static_cast<int>(flats_.size()); }
  bool resident(int unit) const override;
  Communicator::Request start_gather(int unit) override;
  void free_unit(int unit) override;

  GradBuckets& buckets_;
  ShardedAdamW& optimizer_;
  std::vector<Tensor> flats_;  // per unit: (padded) in the compute dtype, its weights' storage when gathered
};

}  // namespace llm
