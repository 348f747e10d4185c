// Data-parallel gradient averaging in buckets (as PyTorch DDP): parameters are grouped, in
// reverse order of use, into buckets of about ddp_bucket_cap_mb; during the last micro-batch's
// backward, a bucket's collective starts as soon as every gradient in it is complete, so
// communication overlaps the rest of backward. ZeRO-1 reduce-scatters instead of all-reducing:
// each rank ends up with the mean of its own slice of every bucket. ZeRO-2 also drops each
// parameter's full gradient as soon as its bucket is packed, and holds a bucket's flat buffer
// only while its collective runs: a rank keeps only its slices of the gradients.
#pragma once
#include <unordered_map>
#include <vector>

#include "engine/autograd.h"
#include "engine/communicator.h"

namespace llm {

struct GradBucket {
  std::vector<Tensor*> params;   // in the order they sit in `flat`
  std::vector<int64_t> offsets;  // element offset of each param in `flat`
  int64_t numel = 0;
  int64_t padded = 0;            // numel rounded up to equal parts per rank (scatter), else numel
  Device device = Device::cpu();
  Tensor flat;                   // f32 (padded): packed gradients, then their mean; ZeRO-2: only
                                 // between launch and finish (undefined otherwise)
  int64_t slice_begin = 0;       // ZeRO-1: where this rank's part starts in `flat`
  Tensor slice;                  // ZeRO-1: f32 (padded numel / world): the mean of this rank's part
  size_t pending = 0;            // gradients not complete yet in this pass
  bool launched = false;
  Communicator::Request request;

  Tensor part(size_t i) const { return flat.narrow(0, offsets[i], params[i]->numel()); }  // param i's
  void pack();  // the params' gradients into `flat` (zeros where a param got none)
};

class GradBuckets {
 public:
  // `params` in model order, all on one device; `scatter`: ZeRO-1 (reduce-scatter) instead of
  // all-reduce; `release`: ZeRO-2 (with scatter): drop full gradients and flat buffers once reduced.
  GradBuckets(Communicator& comm, const std::vector<Tensor*>& params, double cap_mb, bool scatter,
              bool release = false);

  // Arms one backward pass: returns the hook to install for it (LeafReadyHookScope).
  LeafReadyHook start_pass();
  // Launches what the pass did not (unused parameters count as zero gradients), waits for every
  // bucket and divides by the world size. All-reduce: each parameter's grad now holds the mean.
  // Reduce-scatter: each bucket's `slice` holds the mean of this rank's part.
  void finish();

  std::vector<GradBucket>& buckets() { return buckets_; }
  double launched_during_backward() const { return launched_in_pass_; }  // share of buckets
  bool releases_gradients() const { return release_; }

 private:
  void launch(GradBucket& bucket);

  Communicator& comm_;
  bool scatter_, release_;
  std::vector<GradBucket> buckets_;
  std::unordered_map<AutogradMeta*, size_t> bucket_of_;
  double launched_in_pass_ = 0.0;
};

}  // namespace llm
