// defines: FrozenShards (ZeRO-3 of an adapter run's frozen base: byte slices per unit, gathered
// per use)
#include "engine/frozen_shards.h"

#include <algorithm>

#include "engine/autograd.h"
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
    : comm_(comm) {
  const size_t world = static_cast<size_t>(comm.world_size()), rank = static_cast<size_t>(comm.rank());
  // Every slice first, copied straight from the tensors' bytes that fall in this rank's part;
  // then the views. In that order no slice is carved from a larger cached block freed on the way
  // (the caching allocator would count the whole block), and no unit is ever staged whole.
  std::vector<std::vector<size_t>> offsets(units.size());
  for (size_t u = 0; u < units.size(); u++) {
    LLM_CHECK(!units[u].empty(), "FrozenShards: a unit without frozen tensors");
    size_t bytes = 0;
    for (const Tensor* t : units[u]) {
      LLM_CHECK(t->defined() && t->is_contiguous() && !t->requires_grad(),
                "FrozenShards: " + t->str() + " is not a frozen contiguous tensor");
      offsets[u].push_back(round_up(bytes, kAlign));
      bytes = offsets[u].back() + t->nbytes();
    }
    const size_t part = round_up((bytes + world - 1) / world, kAlign), begin = rank * part;
    Unit unit;
    unit.slice = Tensor::zeros({static_cast<int64_t>(part)}, DType::u8, store);
    for (size_t j = 0; j < units[u].size(); j++) {
      const Tensor& t = *units[u][j];
      const size_t lo = std::max(begin, offsets[u][j]), hi = std::min(begin + part, offsets[u][j] + t.nbytes());
      if (lo >= hi) continue;
      const Tensor src = t.view_bytes(0, {static_cast<int64_t>(t.nbytes())}, DType::u8);
      unit.slice.narrow(0, static_cast<int64_t>(lo - begin), static_cast<int64_t>(hi - lo))
          .copy_from(src.narrow(0, static_cast<int64_t>(lo - offsets[u][j]), static_cast<int64_t>(hi - lo)));
    }
    units_.push_back(std::move(unit));
  }
  // The tensors become views of a buffer on the compute device that has no bytes until the
  // unit's first gather; their own storage goes with their last reference.
  for (size_t u = 0; u < units.size(); u++) {
    Unit& unit = units_[u];
    unit.flat = Tensor::released({unit.slice.numel() * static_cast<int64_t>(world)}, DType::u8, compute);
    for (size_t j = 0; j < units[u].size(); j++) {
      Tensor& t = *units[u][j];
      t = unit.flat.view_bytes(offsets[u][j], t.shape(), t.dtype());
    }
  }
}

void FrozenShards::before_forward(int unit) {
  gather(unit);
  if (grad_enabled()) record_hook("release_frozen_unit", [this, unit] { release(unit); });
}

void FrozenShards::gather(int unit) {
  Unit& u = units_.at(unit);
  if (u.flat.storage_resident()) return;
  u.flat.reacquire_storage();
  const int64_t part = u.slice.numel();
  u.flat.narrow(0, comm_.rank() * part, part).copy_from(u.slice);  // host to device when offloaded
  // Bytes travel as f32 words: the collectives move them unchanged (no arithmetic, no conversion),
  // so any dtype's bits arrive as they left.
  Tensor words = u.flat.view_bytes(0, {u.flat.numel() / 4}, DType::f32);
  comm_.allgather(words);
}

void FrozenShards::release(int unit) { units_.at(unit).flat.release_storage(); }

size_t FrozenShards::slice_bytes() const {
  size_t bytes = 0;
  for (const Unit& u : units_) bytes += static_cast<size_t>(u.slice.numel());
  return bytes;
}

}  // namespace llm
