// ZeRO-3 for what does not train: an adapter run's frozen base weights (f32 or bf16 tensors, and
// under QLoRA the NF4 codes, absmax and double-quantisation scales) sharded per unit as
// ShardedWeights shards trained ones (engine/weight_units.h numbers the units). They have no
// gradients and no optimizer state, so no master slices hold them: each unit's frozen tensors,
// whatever their dtypes, are laid out in one flat byte buffer at aligned offsets and become views
// of it, and each rank keeps one equal byte slice of that buffer between uses. A gather is one
// all-gather of bytes in place; the unit is gathered just before its forward (or during the
// previous unit's, prefetched as engine/weight_units.h says) and released after,
// gathered again when backward reaches it (or its recompute segment re-runs), and released once
// the unit's backward is done, by a hook recorded on the tape at the unit's start (its nodes come
// after it on the tape, so their backward runs first).
//
// FSDP's offload_params: the slices live in host memory and each gather copies this rank's slice
// to the device first, so between uses the device holds none of the frozen base.
#pragma once
#include <vector>

#include "engine/communicator.h"
#include "engine/weight_units.h"

namespace llm {

class FrozenShards final : public WeightUnits {
 public:
  // units[i]: the frozen tensors unit i's forward reads (defined, contiguous, none requiring a
  // gradient; none at all when everything of the unit trains). Each becomes a view of unit i's
  // buffer on `compute`, which has no bytes until the unit's first gather (tensors built on the
  // host are sharded before the model moves: only the slices reach the device); this rank's
  // slices are kept on `store` (`compute`, or the host to offload). A tensor without bytes
  // (Tensor::released: a sharded start-up) is laid out by its shape and dtype alone; its slices
  // come through keep_slice.
  FrozenShards(Communicator& comm, const std::vector<std::vector<Tensor*>>& units, Device compute, Device store);
  // This rank's slices of `tensor` (one of the units' tensors) from its whole value (same shape
  // and dtype, any device): a sharded start-up, one weight at a time, so that no rank ever holds
  // the whole base. Not collective.
  void keep_slice(const Tensor* tensor, const Tensor& value);
  size_t slice_bytes() const;  // what this rank keeps between uses, every unit

 private:
  struct Placed {
    const Tensor* tensor;  // the model's tensor (a view of `flat` once laid out)
    size_t offset;         // its first byte in `flat`
  };
  struct Unit {
    Tensor flat;   // u8 (padded bytes) on the compute device: the unit's tensors view it; released between uses
    Tensor slice;  // u8 (padded / world size): this rank's part, on the store device
    std::vector<Placed> placed;
  };
  // The bytes of `value` (laid out at `offset` of the unit's flat buffer) that fall in this
  // rank's slice, copied there.
  void copy_to_slice(Unit& unit, size_t offset, const Tensor& value);
  int num_units() const override { return static_cast<int>(units_.size()); }
  bool resident(int unit) const override;
  Communicator::Request start_gather(int unit) override;
  void free_unit(int unit) override;
  // While gradients are being recorded, the hook that releases the unit when backward has
  // passed it.
  void forward_started(int unit) override;

  Communicator& comm_;
  std::vector<Unit> units_;
};

}  // namespace llm
