// defines: FrozenShards (ZeRO-3 of an adapter run's frozen base: byte slices per unit, gathered
// per use)
#include "engine/frozen_shards.h"

#include <algorithm>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"

namespace llm {

namespace {
// Every tensor starts at a multiple of this many bytes (wide vector loads and cuBLAS want 16;
// 256 keeps every dtype and kernel happy at a cost of under 256 bytes a tensor), and so does
// every rank's slice.
constexpr size_t kAlign = 256;
size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }
}  // namespace

FrozenShards::FrozenShards(Communicator& comm, const std::vector<std::vector<Tensor*>>& units, Device compute,
                           Device store)
    : WeightUnits(comm), comm_(comm) {
  const size_t world = static_cast<size_t>(comm.world_size());
  // One unit at a time: its slice copied straight from the tensors' bytes that fall in this
  // rank's part, then the tensors made views (their own storage goes with their last reference),
  // so start-up holds the model plus one slice, never a unit staged whole.
  for (const std::vector<Tensor*>& tensors : units) {
    Unit& unit = units_.emplace_back();
    size_t bytes = 0;
    for (const Tensor* t : tensors) {
      LLM_CHECK(t->defined() && t->is_contiguous() && !t->requires_grad(),
                "FrozenShards: " + t->str() + " is not a frozen contiguous tensor");
      unit.placed.push_back({t, round_up(bytes, kAlign)});
      bytes = unit.placed.back().offset + t->nbytes();
    }
    const size_t part = round_up((bytes + world - 1) / world, kAlign);
    unit.slice = Tensor::zeros({static_cast<int64_t>(part)}, DType::u8, store);
    for (const Placed& p : unit.placed)
      if (p.tensor->storage_resident()) copy_to_slice(unit, p.offset, *p.tensor);
    // On the compute device, with no bytes until the unit's first gather.
    unit.flat = Tensor::released({static_cast<int64_t>(part * world)}, DType::u8, compute);
    if (tensors.empty()) continue;
    const Device built = tensors.front()->device();
    for (size_t j = 0; j < tensors.size(); j++)
      *tensors[j] = unit.flat.view_bytes(unit.placed[j].offset, tensors[j]->shape(), tensors[j]->dtype());
    // The unit's own bytes go back to the system now, not to the allocator's cache, so that
    // resident memory never holds the whole model and every slice at once.
    backend(built).allocator().empty_cache();
  }
}

void FrozenShards::copy_to_slice(Unit& unit, size_t offset, const Tensor& value) {
  const size_t part = static_cast<size_t>(unit.slice.numel()), begin = static_cast<size_t>(comm_.rank()) * part;
  const size_t lo = std::max(begin, offset), hi = std::min(begin + part, offset + value.nbytes());
  if (lo >= hi) return;
  const Tensor bytes = value.contiguous().view_bytes(0, {static_cast<int64_t>(value.nbytes())}, DType::u8);
  unit.slice.narrow(0, static_cast<int64_t>(lo - begin), static_cast<int64_t>(hi - lo))
      .copy_from(bytes.narrow(0, static_cast<int64_t>(lo - offset), static_cast<int64_t>(hi - lo)));
}

void FrozenShards::keep_slice(const Tensor* tensor, const Tensor& value) {
  for (Unit& unit : units_)
    for (const Placed& p : unit.placed) {
      if (p.tensor != tensor) continue;
      LLM_CHECK(value.shape() == tensor->shape() && value.dtype() == tensor->dtype(),
                "FrozenShards::keep_slice: " + value.str() + " for " + tensor->str());
      copy_to_slice(unit, p.offset, value);
      return;
    }
  LLM_CHECK(false, "FrozenShards::keep_slice: " + tensor->str() + " is in no unit");
}

void FrozenShards::forward_started(int unit) {
  if (grad_enabled()) record_hook("release_frozen_unit", [this, unit] { release(unit); });
}

// A unit with nothing frozen (an untied embedding trained whole, modules_to_save) has nothing
// to gather: always resident.
bool FrozenShards::resident(int unit) const {
  const Tensor& flat = units_.at(unit).flat;
  return flat.numel() == 0 || flat.storage_resident();
}

Communicator::Request FrozenShards::start_gather(int unit) {
  Unit& u = units_.at(unit);
  u.flat.reacquire_storage();
  const int64_t part = u.slice.numel();
  u.flat.narrow(0, comm_.rank() * part, part).copy_from(u.slice);  // host to device when offloaded
  // Bytes travel as f32 words: the collectives move them unchanged (no arithmetic, no conversion),
  // so any dtype's bits arrive as they left.
  Tensor words = u.flat.view_bytes(0, {u.flat.numel() / 4}, DType::f32);
  return comm_.iallgather(words);
}

void FrozenShards::free_unit(int unit) {
  const Tensor& flat = units_.at(unit).flat;
  if (flat.numel() > 0) flat.release_storage();
}

size_t FrozenShards::slice_bytes() const {
  size_t bytes = 0;
  for (const Unit& u : units_) bytes += static_cast<size_t>(u.slice.numel());
  return bytes;
}

}  // namespace llm
