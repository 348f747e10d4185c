// ZeRO stage 1: AdamW whose moments are sharded across data-parallel ranks. Each rank owns one
// contiguous slice of every gradient bucket (GradBuckets with reduce-scatter), keeps m and v for
// that slice only, updates those parameter elements, and an all-gather brings every rank the
// whole updated parameters. Optimizer memory per rank drops to 1 / world_size. With buckets that
// release gradients it is ZeRO stage 2: the step reads only the slices either way.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "engine/grad_buckets.h"
#include "engine/optimizer.h"

namespace llm {

class ShardedAdamW final : public Optimizer {
 public:
  ShardedAdamW(Communicator& comm, GradBuckets& buckets, const std::vector<OptimParam>& params,
               AdamWConfig config);

  // The global norm of the mean gradients from every rank's slices, clipped as clip_grad_norm
  // does; the update covers this rank's slices, then an all-gather brings every rank the whole
  // updated parameters. Collective.
  double step(float lr, double max_norm = 0.0, bool update = true) override;
  size_t state_bytes() const override;  // this rank's moments
  size_t unsharded_state_bytes() const override;
  std::string describe() const override;
  // All-gathered from every rank's slices. Collective.
  std::vector<std::pair<std::string, Tensor>> export_state() override;
  void import_state(const StateLookup& find) override;

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
};

}  // namespace llm
