// defines: WeightUnits::before_forward, after_forward, gather_all and the prefetch
// (what ZeRO-3's two kinds of sharded weights do alike around a unit's forward)
#include "engine/weight_units.h"

#include "engine/autograd.h"

namespace llm {

void WeightUnits::set_prefetch(bool forward, bool backward) {
  forward_prefetch_ = forward;
  backward_prefetch_ = backward;
}

void WeightUnits::before_forward(int unit) {
  // Inside backward this is a recompute segment's re-run: backward's order.
  const bool backward = in_backward();
  gather(unit, backward ? (backward_prefetch_ ? next_in_backward(unit) : -1)
                        : (forward_prefetch_ ? next_in_forward(unit) : -1));
  forward_started(unit);
}

Tensor WeightUnits::after_forward(int unit, const Tensor& out) {
  // A recompute segment's re-run inside backward: its own backward follows at once and needs the
  // weights; they are released after it (GradBuckets once the gradients are reduced, or
  // FrozenShards' hook).
  if (in_backward()) return out;
  const bool recorded = grad_enabled() && out.requires_grad();
  // The head's unit (the loss, lm_head) is backward's first: kept whole for it rather than
  // released and gathered again at once.
  const int head = head_after_blocks_ ? num_units() - 1 : 0;
  if (!recorded || unit != head) release(unit);
  // Untied, whether backward comes back for the embedding's unit at its end (not when nothing
  // before the first block trains: a frozen embedding under LoRA).
  if (unit == 0 && head_after_blocks_) embedding_in_backward_ = recorded;
  if (!recorded) return out;
  // An identity whose backward runs just before the unit's own backward nodes (the tape runs
  // newest first): the weights come back for them.
  Tensor same = out.detach();
  record_node("gather_weights", {out}, {&same}, [this, unit](const Grads& grads) {
    gather(unit, backward_prefetch_ ? next_in_backward(unit) : -1);
    return grads;
  });
  return same;
}

void WeightUnits::gather_all() {
  for (int unit = 0; unit < num_units(); unit++) gather(unit, -1);
}

void WeightUnits::release(int unit) {
  if (unit == in_flight_) {
    finish_prefetch();  // the collective writes into the bytes to be freed
    counts_.unused++;
  }
  free_unit(unit);
}

void WeightUnits::gather(int unit, int next) {
  if (unit == in_flight_) {
    finish_prefetch();
  } else if (!resident(unit)) {
    Communicator::Request request = start_gather(unit);
    counts_.gathers++;
    comm_.wait(request);
  }
  if (next < 0 || next == in_flight_ || resident(next)) return;
  if (in_flight_ >= 0) finish_prefetch();  // at most one unit ahead
  request_ = start_gather(next);
  in_flight_ = next;
  counts_.gathers++;
  counts_.ahead++;
}

void WeightUnits::finish_prefetch() {
  comm_.wait(request_);
  in_flight_ = -1;
}

int WeightUnits::next_in_forward(int unit) const { return unit + 1 < num_units() ? unit + 1 : -1; }

// Backward first gathers the head's unit (the loss and lm_head): unit 0 when tied, which then
// stays whole to the end (the embedding's gradient). Then, without recompute, the blocks last to
// first; with recompute, the segments last to first, each re-running its blocks first to last.
// Untied, the embedding's own unit comes last, if backward gathers it at all.
int WeightUnits::next_in_backward(int unit) const {
  const int blocks = num_units() - 1 - (head_after_blocks_ ? 1 : 0);
  const int head = head_after_blocks_ ? blocks + 1 : 0;
  const int after_first_block = head_after_blocks_ && embedding_in_backward_ ? 0 : -1;
  if (unit == head) {
    if (blocks < 1) return after_first_block;
    return recompute_every_ <= 0 ? blocks : (blocks - 1) / recompute_every_ * recompute_every_ + 1;
  }
  if (unit == 0) return -1;  // untied: the embedding, backward's last
  if (recompute_every_ <= 0) return unit > 1 ? unit - 1 : after_first_block;
  const int every = recompute_every_;
  const int block = unit - 1, first = block / every * every;  // first: the segment's first block
  if ((block + 1) % every != 0 && block + 1 < blocks) return unit + 1;
  return first >= every ? first - every + 1 : after_first_block;  // the previous segment's first block
}

}  // namespace llm
