// ZeRO stage 1: AdamW whose state is sharded across data-parallel ranks. Each rank owns one
// contiguous slice of every gradient bucket (GradBuckets with reduce-scatter), keeps the f32
// master weights and m and v for that slice only, updates them, and an all-gather brings every
// rank the whole updated weights (the compute copy). Optimizer memory per rank drops to
// 1 / world_size. With buckets that release gradients it is ZeRO stage 2: the step reads only the
// slices either way. ZeRO-3 (engine/sharded_weights.h) skips that all-gather: the weights are
// gathered per unit when the forward needs them.
//
// The compute copy is in the dtype the model computes in, chosen once at construction: bf16 on a
// GPU that computes in bf16 (DeepSpeed's bf16 parameters, FSDP's param_dtype), f32 on the CPU
// (where the weights and the master slice then hold the same values twice over). Each rank casts
// its updated master slice to it and the all-gather moves that dtype: a cast is elementwise, so
// gathering cast slices gives what casting the gathered f32 weights would, at half the bytes.
// The weights' gradients stay f32 (AutogradMeta::grad_in_f32) and so do the buckets that reduce
// them: the reduction is f32, as FSDP's reduce_dtype=f32 and DeepSpeed's fp32 gradient
// accumulation. The master is the weights' true value: a checkpoint gathers it (gather_master
// into an f32 buffer), a restore writes it (take_master).
//
// 8-bit state (bitsandbytes' blockwise) needs buckets built with kQuantSliceAlignment: then no
// quantisation block crosses a slice boundary, each rank quantises exactly the blocks one rank's
// AdamW would, and the update is the same arithmetic as AdamW's on every element.
#pragma once
#include <functional>
#include <unordered_set>
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
  // Takes the master slices from the buckets' weights (f32; ZeRO-3's may have no bytes yet: see
  // take_master). With `weights` bf16, each weight with bytes becomes its bf16 compute copy
  // (the same leaf to autograd and the buckets), and every weight's gradient accumulates in f32.
  ShardedAdamW(Communicator& comm, GradBuckets& buckets, const std::vector<OptimParam>& params,
               AdamWConfig config, AdamWState state = AdamWState::f32, DType weights = DType::f32);
  DType weight_dtype() const { return weight_dtype_; }  // of the compute copy

  // The global norm of the mean gradients from every rank's slices, clipped as clip_grad_norm
  // does; the update covers this rank's slices, then an all-gather brings every rank the whole
  // updated parameters. Collective.
  double step(float lr, double max_norm = 0.0, bool update = true) override;
  size_t state_bytes() const override;  // this rank's moments
  size_t unsharded_state_bytes() const override;
  std::string describe() const override;
  std::string state_format() const override { return state_format_of("AdamW", state_); }
  // ZeRO-3: the step leaves the whole weights alone (they are released between uses).
  void keep_weights_sharded() { gather_after_step_ = false; }
  // Every rank's master slice of bucket `bucket` into `flat` (the bucket's padded layout), cast
  // to flat's dtype (the compute copy's, or f32 on the host for a checkpoint) and all-gathered in
  // place. Collective; start_gather_master's completes in Communicator::wait.
  Communicator::Request start_gather_master(size_t bucket, Tensor& flat);
  void gather_master(size_t bucket, Tensor& flat);
  // Per parameter, as AdamW names and lays it out, all-gathered from every rank's slices: the
  // same tensors whatever the world size, on rank 0 (the one that writes checkpoints), one
  // bucket's moment gathered at a time; the other ranks take part in the gathers and get
  // nothing. Collective.
  std::vector<TensorEntry> state_table() const override;
  void export_state(const TensorSink& put) override;
  // The moments only: a restore gives the master slices through take_master.
  void import_state(const StateLookup& find) override;
  // Elements [begin, begin + count) of a weight's whole value, flat: a value made whole and
  // narrowed, or a checkpoint's byte range.
  using PartReader = std::function<Tensor(int64_t begin, int64_t count)>;
  // This rank's master slices of `param` (f32, any device), each asked of `read`: ZeRO-3's
  // start-up (weights without bytes between uses) and a ZeRO-3 restore's byte ranges.
  void take_master(const Tensor* param, const PartReader& read);
  // The same from its whole value (f32, the param's shape, any device): every other restore.
  void take_master(const Tensor* param, const Tensor& whole);

 private:
  // A run of this rank's slice that lies inside one parameter, and its moments.
  struct Segment {
    int64_t slice_offset, param_offset, length;
    Tensor* param;
    bool decay;
    float lr_scale;
    AdamWMoments moments;  // (length)
  };
  struct Shard {
    std::vector<Segment> segments;
    Tensor master;  // f32 (slice): this rank's master weights; zero where no parameter lies
  };
  // Every segment's master from the whole f32 weights; a weight without bytes (ZeRO-3 between
  // uses) is skipped: its slices come through take_master.
  void load_master();
  void make_compute_copies();  // the weights with bytes to weight_dtype_; f32 gradients for all
  void gather_weights(size_t bucket);  // gather_master, then out to the bucket's weights

  Tensor gather(size_t bucket, int64_t per, Tensor AdamWMoments::*pick);  // see the .cpp

  Communicator& comm_;
  GradBuckets& buckets_;
  std::vector<Shard> shards_;  // one per bucket
  std::unordered_map<const Tensor*, std::string> names_;
  std::unordered_set<const Tensor*> quantised_;  // the parameters whose moments are 8-bit
  AdamWState state_;
  DType weight_dtype_;
  bool gather_after_step_ = true;
};

}  // namespace llm
