// ZeRO stage 1: AdamW whose moments are sharded across data-parallel ranks. Each rank owns one
// contiguous slice of every gradient bucket (GradBuckets with reduce-scatter), keeps m and v for
// that slice only, updates those parameter elements, and an all-gather brings every rank the
// whole updated parameters. Optimizer memory per rank drops to 1 / world_size.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "engine/grad_buckets.h"
#include "engine/optimizer.h"

namespace llm {

class ShardedAdamW {
 public:
  ShardedAdamW(Communicator& comm, GradBuckets& buckets, const std::vector<OptimParam>& params,
               AdamWConfig config);

  // The global norm of the mean gradients (from every rank's slices), clipped as
  // clip_grad_norm does. Collective.
  double clip_grad_norm(double max_norm);
  // Updates this rank's slices and all-gathers the parameters. Collective.
  void step(float lr);

  int64_t steps_taken() const { return t_; }
  void set_steps_taken(int64_t t) { t_ = t; }
  size_t state_bytes() const;  // this rank's moments

  // The whole state as AdamW::state() names it ("<param>.exp_avg", "<param>.exp_avg_sq"), on
  // every rank (all-gathered). Collective.
  std::vector<std::pair<std::string, Tensor>> gather_state();
  // Takes this rank's slices from whole per-parameter moments (found by name).
  void load_state(const std::function<const Tensor&(const std::string& name, const Shape& shape)>& find);

 private:
  // A run of this rank's slice that lies inside one parameter.
  struct Segment {
    int64_t slice_offset, param_offset, length;
    Tensor* param;
    bool decay;
  };
  struct Shard {
    std::vector<Segment> segments;
    Tensor m, v;         // (slice)
    Tensor param_slice;  // (slice): scratch for the elements this rank updates
  };

  Communicator& comm_;
  GradBuckets& buckets_;
  std::vector<Shard> shards_;  // one per bucket
  std::unordered_map<const Tensor*, std::string> names_;
  AdamWConfig config_;
  int64_t t_ = 0;
};

}  // namespace llm
