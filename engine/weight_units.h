// How a model's forward reaches weights that are not always resident (ZeRO-3: trained weights in
// engine/sharded_weights.h, an adapter run's frozen base in engine/frozen_shards.h). Unit 0 is
// the embedding, unit i + 1 transformer block i. With untied embeddings the final norm and lm_head
// are one more unit after the blocks: the embedding is whole only for its lookup and its backward
// (the last), the head from the end of forward through the loss to the start of backward. Tied,
// unit 0 holds the final norm too and lm_head's use keeps it whole from the forward's start to
// the end of backward.
//
// Prefetch (FSDP's forward_prefetch and backward_prefetch BACKWARD_PRE): when a unit is gathered
// for its forward, the next unit's all-gather starts too, into that unit's own buffer, so that it
// runs during this unit's compute (and in backward, the unit backward reaches next). At most one
// unit is in flight ahead; its use (or its release, unused) waits for it first. Which unit comes
// next follows from the unit's index, the pass and the recompute segments alone, never from
// timing, so every rank issues the same collectives in the same order.
#pragma once
#include <cstdint>

#include "engine/communicator.h"
#include "engine/tensor.h"

namespace llm {

class WeightUnits {
 public:
  explicit WeightUnits(Communicator& comm) : comm_(comm) {}
  virtual ~WeightUnits() = default;
  // The unit's weights whole from here (collective); the next unit's all-gather started.
  void before_forward(int unit);
  // After the unit's forward made `out`: frees the unit unless a backward will re-run it at once
  // (a recompute segment) or use it first (the head's, while gradients are recorded); when
  // gradients are being recorded, returns `out` through an identity node whose backward gathers
  // the unit again (if released) before the unit's own backward runs.
  Tensor after_forward(int unit, const Tensor& out);
  // Every unit whole (merge_lora's merged export, to the end of the run). Collective.
  void gather_all();
  // Whether the final norm and lm_head are the last unit (untied embeddings) or in unit 0.
  void set_head_after_blocks(bool after) { head_after_blocks_ = after; }
  // Both on unless a config turns them off (fsdp_config: fsdp_forward_prefetch,
  // fsdp_backward_prefetch). Every rank the same.
  void set_prefetch(bool forward, bool backward);
  // Blocks per recompute segment (0: none) of the forward about to run: a segment's backward
  // re-runs its blocks first to last, which decides the order of backward's gathers.
  void set_recompute_every(int blocks) { recompute_every_ = blocks; }
  // Since construction: all-gathers started (the collectives), how many of them ahead of their
  // use, and how many of those were released unused (a wrong guess of the next unit: 0 expected).
  struct Counts {
    int64_t gathers = 0, ahead = 0, unused = 0;
  };
  const Counts& counts() const { return counts_; }

 protected:
  virtual int num_units() const = 0;
  virtual bool resident(int unit) const = 0;  // has bytes: gathered, or its gather in flight
  // Gives the unit its bytes and starts its all-gather. Collective.
  virtual Communicator::Request start_gather(int unit) = 0;
  virtual void free_unit(int unit) = 0;
  virtual void forward_started(int unit) {}  // after before_forward's gather
  void release(int unit);  // back to slices, once an all-gather in flight into it is done

 private:
  // `unit` whole from here (collective; nothing when resident already); then starts the
  // all-gather of `next` (-1: none), after the one in flight, if any, is done.
  void gather(int unit, int next);
  int next_in_forward(int unit) const;
  int next_in_backward(int unit) const;
  void finish_prefetch();

  Communicator& comm_;
  bool forward_prefetch_ = true, backward_prefetch_ = true, head_after_blocks_ = false;
  bool embedding_in_backward_ = false;  // untied: the last forward recorded the embedding's gather
  int recompute_every_ = 0;
  int in_flight_ = -1;  // the unit whose prefetched all-gather may still be running, -1: none
  Communicator::Request request_;
  Counts counts_;
};

}  // namespace llm
