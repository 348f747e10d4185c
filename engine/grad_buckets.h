// Data-parallel gradient averaging in buckets (as PyTorch DDP): parameters are grouped, in
// reverse order of use, into buckets of about ddp_bucket_cap_mb; during the last micro-batch's
// backward, a bucket's collective starts as soon as every gradient in it is complete, so
// communication overlaps the rest of backward. ZeRO-1 reduce-scatters instead of all-reducing:
// each rank ends up with the mean of its own slice of every bucket. ZeRO-2 also drops each
// parameter's full gradient as soon as its bucket is packed, and holds a bucket's flat buffer
// only while its collective runs (launching a bucket first settles the one in flight, so at most
// two flat buffers exist): a rank keeps only its slices of the gradients. ZeRO-3's units
// mode: one bucket per unit of weights (engine/sharded_weights.h), reduce-scattered in every
// micro-batch's backward and summed into the slices, the unit's weights freed once packed.
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
  Tensor incoming;               // units mode: this pass's sum of this rank's part, while in flight
  size_t pending = 0;            // gradients not complete yet in this pass
  bool launched = false;
  bool settled = false;          // its collective waited for (and its transient buffers freed)
  Communicator::Request request;

  Tensor part(size_t i) const { return part_of(flat, i); }  // param i's
  // Param i's elements of `buffer`, any buffer laid out as this bucket (1-D).
  Tensor part_of(const Tensor& buffer, size_t i) const { return buffer.narrow(0, offsets[i], params[i]->numel()); }
  void pack();  // the params' gradients into `flat` (zeros where a param got none)
};

// For blockwise-quantised optimizer state under ZeRO (8-bit AdamW): parameters of at least
// `min_numel` elements start at a multiple of `block` in their bucket, and each rank's slice is a
// multiple of `block` long, so every block of such a parameter (counted from its first element, as
// one rank's AdamW counts them) lies whole in one rank's slice. The gaps are zero padding.
struct SliceAlignment {
  int64_t block = 1;
  int64_t min_numel = 0;
};

class GradBuckets {
 public:
  // `params` in model order, all on one device; `scatter`: ZeRO-1 (reduce-scatter) instead of
  // all-reduce; `release`: ZeRO-2 (with scatter): drop full gradients and flat buffers once reduced.
  GradBuckets(Communicator& comm, const std::vector<Tensor*>& params, double cap_mb, bool scatter,
              bool release = false, SliceAlignment align = {});
  // ZeRO-3's units mode: bucket i holds units[i] (reduce-scatter, release, weights freed).
  GradBuckets(Communicator& comm, const std::vector<std::vector<Tensor*>>& units, SliceAlignment align = {});

  // Arms one backward pass: returns the hook to install for it (LeafReadyHookScope). Units mode
  // arms every micro-batch's pass (each ends with end_pass()); the others only the last one's.
  LeafReadyHook start_pass();
  // Units mode: launches what the pass did not, waits, and adds this pass into the slices.
  void end_pass();
  // Launches what the pass did not (unused parameters count as zero gradients), waits for every
  // bucket and divides by the world size. All-reduce: each parameter's grad now holds the mean.
  // Reduce-scatter: each bucket's `slice` holds the mean of this rank's part.
  void finish();

  std::vector<GradBucket>& buckets() { return buckets_; }
  double launched_during_backward() const { return launched_in_pass_; }  // share of buckets
  bool releases_gradients() const { return release_; }
  bool reduces_every_pass() const { return units_; }

 private:
  void add_bucket(const std::vector<Tensor*>& params, SliceAlignment align);  // at the back
  void lay_out(SliceAlignment align);  // pads and slices every bucket
  void launch(GradBucket& bucket);
  void settle(GradBucket& bucket);  // waits; ZeRO-2 and 3 free its buffers, units mode sums it
  void wait_all();  // launches what is left, then settles every bucket

  Communicator& comm_;
  bool scatter_, release_, units_ = false;
  int64_t passes_ = 0;  // since the last finish(): units mode zeroes the slices at the first
  std::vector<GradBucket> buckets_;
  std::unordered_map<AutogradMeta*, size_t> bucket_of_;
  double launched_in_pass_ = 0.0;
};

}  // namespace llm
