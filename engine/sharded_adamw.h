// ZeRO stage 1: AdamW whose state is sharded across data-parallel ranks. Each rank owns one
// contiguous slice of every gradient bucket (GradBuckets with reduce-scatter), keeps the f32
// master weights and m and v for that slice only, updates them, and an all-gather brings every
// rank the whole updated weights (the compute copy). Optimizer memory per rank drops to
// 1 / world_size. With buckets that release gradients it is ZeRO stage 2: the step reads only the
// slices either way. ZeRO-3 (engine/sharded_weights.h) skips that all-gather: the weights are
// gathered per unit when the forward needs them.
//
// On the CPU the compute copy is f32 too, so the weights and the master slice hold the same
// values twice over; on a GPU the compute copy is what the forward casts to bf16.
//
// 8-bit state (bitsandbytes' blockwise) needs buckets built with kQuantSliceAlignment: then no
// quantisation block crosses a slice boundary, each rank quantises exactly the blocks one rank's
// AdamW would, and the update is the same arithmetic as AdamW's on every element.
#pragma once
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "engine/grad_buckets.h"
#include "engine/optimizer.h"
#include "engine/quant_map.h"

namespace llm {

constexpr SliceAlignment kQuantSliceAlignment{kQuantBlock, kMin8bitSize};

class ShardedAdamW final : public Optimizer {
 public:
  ShardedAdamW(Communicator& comm, GradBuckets& buckets, const std::vector<OptimParam>& params,
               AdamWConfig config, AdamWState state = AdamWState::f32);

  // The global norm of the mean gradients from every rank's slices, clipped as clip_grad_norm
  // does; the update covers this rank's slices, then an all-gather brings every rank the whole
  // updated parameters. Collective.
  double step(float lr, double max_norm = 0.0, bool update = true) override;
  size_t state_bytes() const override;  // this rank's moments
  size_t unsharded_state_bytes() const override;
  std::string describe() const override;
  // ZeRO-3: the step leaves the whole weights alone (they are released between uses).
  void keep_weights_sharded() { gather_after_step_ = false; }
  // Every rank's master slice of bucket `bucket` into `flat` (f32, the bucket's padded layout),
  // all-gathered in place. Collective; start_gather_master's completes in Communicator::wait.
  Communicator::Request start_gather_master(size_t bucket, Tensor& flat);
  void gather_master(size_t bucket, Tensor& flat);
  // Per parameter, as AdamW names and lays it out, all-gathered from every rank's slices: the
  // same tensors whatever the world size. Collective.
  std::vector<std::pair<std::string, Tensor>> export_state() override;
  // Also takes the master slices from the weights, which a restore has just written whole.
  void import_state(const StateLookup& find) override;
  // Elements [begin, begin + count) of a weight's whole value, flat: a value made whole and
  // narrowed, or a checkpoint's byte range.
  using PartReader = std::function<Tensor(int64_t begin, int64_t count)>;
  // This rank's master slices of `param` (f32, any device), each asked of `read`: ZeRO-3 (weights
  // without bytes between uses) at start-up and on restore.
  void take_master(const Tensor* param, const PartReader& read);

 private:
  // A run of this rank's slice that lies inside one parameter, and its moments.
  struct Segment {
    int64_t slice_offset, param_offset, length;
    Tensor* param;
    bool decay;
    AdamWMoments moments;  // (length)
  };
  struct Shard {
    std::vector<Segment> segments;
    Tensor master;  // f32 (slice): this rank's master weights; zero where no parameter lies
  };
  // Every segment's master from the whole weights; a weight without bytes (ZeRO-3 between uses)
  // is skipped: its slices come through take_master.
  void load_master();
  void gather_weights(size_t bucket);  // gather_master, then out to the bucket's weights

  Tensor gather(size_t bucket, int64_t per, Tensor AdamWMoments::*pick);  // see the .cpp

  Communicator& comm_;
  GradBuckets& buckets_;
  std::vector<Shard> shards_;  // one per bucket
  std::unordered_map<const Tensor*, std::string> names_;
  AdamWConfig config_;
  AdamWState state_;
  bool gather_after_step_ = true;
};

}  // namespace llm
