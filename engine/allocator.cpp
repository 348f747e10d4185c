// defines: CachingAllocator (segments from the system, cut into blocks and merged again, byte
// counters)
#include "engine/allocator.h"

#include <iterator>
#include <stdexcept>
#include <string>

namespace llm {

namespace {
// 512-byte granularity: small enough to waste little, coarse enough that the slightly different
// sizes of one step's tensors land on the same blocks. Every block starts at a multiple of it
// from its segment's start, so blocks keep the system allocation's alignment up to 512 bytes.
constexpr size_t kGranule = 512;
// PyTorch's pools: requests up to 1 MiB share 2 MiB segments; those up to 10 MiB share 20 MiB
// ones; larger ones get segments of their own size rounded up to 2 MiB. A large block is cut for a
// request only when over 1 MiB would be left (a smaller rest stays with the block: at most 1 MiB
// unused, and no sliver a large request can't use).
constexpr size_t kSmallRequest = size_t(1) << 20;
constexpr size_t kSmallSegment = size_t(2) << 20;
constexpr size_t kMidRequest = size_t(10) << 20;
constexpr size_t kMidSegment = size_t(20) << 20;
constexpr size_t kSegmentRounding = size_t(2) << 20;
constexpr size_t kMinLargeRest = size_t(1) << 20;

size_t round_up(size_t bytes, size_t to) { return (bytes + to - 1) / to * to; }
}  // namespace

void* CachingAllocator::allocate(size_t bytes) {
  const size_t rounded = bytes == 0 ? kGranule : round_up(bytes, kGranule);
  const bool small = rounded <= kSmallRequest;
  std::lock_guard<std::mutex> lock(mutex_);
  char* ptr = take_cached(rounded, small);
  if (!ptr) {
    add_segment(rounded, small);
    ptr = take_cached(rounded, small);
  }
  stats_.in_use_bytes += rounded;
  if (stats_.in_use_bytes > stats_.peak_bytes) stats_.peak_bytes = stats_.in_use_bytes;
  if (stats_.in_use_bytes > stats_.window_peak_bytes) stats_.window_peak_bytes = stats_.in_use_bytes;
  return ptr;
}

// The smallest free block of the pool that holds `rounded` bytes (the lowest address among
// equals), cut to them when the rest is worth keeping apart; marked in use by the request.
char* CachingAllocator::take_cached(size_t rounded, bool small) {
  FreeBlocks& free = pool(small);
  auto fit = free.lower_bound({rounded, nullptr});
  if (fit == free.end()) return nullptr;
  char* ptr = fit->second;
  free.erase(fit);
  Block& block = blocks_.at(ptr);
  const size_t rest = block.bytes - rounded;
  if (small ? rest >= kGranule : rest > kMinLargeRest) {
    block.bytes = rounded;
    blocks_.emplace(ptr + rounded, Block{rest, block.segment, small, 0});
    free.emplace(rest, ptr + rounded);
  }
  block.asked = rounded;
  return ptr;
}

// One more segment from the system, its whole as one free block; when the system has no memory
// left, the cached segments go back to it and it is asked once more.
void CachingAllocator::add_segment(size_t rounded, bool small) {
  const size_t bytes = small                   ? kSmallSegment
                       : rounded < kMidRequest ? kMidSegment
                                               : round_up(rounded, kSegmentRounding);
  char* base = static_cast<char*>(system_alloc(bytes));
  if (!base) {
    free_cached_locked();
    base = static_cast<char*>(system_alloc(bytes));
    if (!base)
      throw std::runtime_error("out of memory allocating " + std::to_string(rounded) + " bytes (" +
                               std::to_string(stats_.in_use_bytes) + " bytes in use)");
  }
  segments_.emplace(base, bytes);
  blocks_.emplace(base, Block{bytes, base, small, 0});
  pool(small).emplace(bytes, base);
  stats_.reserved_bytes += bytes;
  if (stats_.reserved_bytes > stats_.peak_reserved_bytes) stats_.peak_reserved_bytes = stats_.reserved_bytes;
  stats_.system_allocs++;
}

// The block joins its free neighbours of the same segment, so the pieces of a larger block freed
// one by one make it whole again.
void CachingAllocator::deallocate(void* ptr) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = blocks_.find(static_cast<char*>(ptr));
  if (it == blocks_.end() || it->second.asked == 0) throw std::logic_error("deallocate: not a block in use");
  Block& block = it->second;
  stats_.in_use_bytes -= block.asked;
  block.asked = 0;
  FreeBlocks& free = pool(block.small);
  const auto mergeable = [&block](const Block& other) { return other.asked == 0 && other.segment == block.segment; };
  if (auto next = std::next(it); next != blocks_.end() && mergeable(next->second)) {
    free.erase({next->second.bytes, next->first});
    block.bytes += next->second.bytes;
    blocks_.erase(next);
  }
  if (it != blocks_.begin()) {
    auto prev = std::prev(it);
    if (mergeable(prev->second)) {
      free.erase({prev->second.bytes, prev->first});
      prev->second.bytes += block.bytes;
      blocks_.erase(it);
      it = prev;
    }
  }
  free.emplace(it->second.bytes, it->first);
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  free_cached_locked();
}

// A segment with no block in use is one free block (merging made it whole): that block's
// address is the segment's and its size the segment's.
void CachingAllocator::free_cached_locked() {
  for (auto it = segments_.begin(); it != segments_.end();) {
    const auto [base, bytes] = *it;
    const Block& block = blocks_.at(base);
    if (block.asked > 0 || block.bytes != bytes) {
      ++it;
      continue;
    }
    pool(block.small).erase({bytes, base});
    blocks_.erase(base);
    system_free(base);
    stats_.reserved_bytes -= bytes;
    it = segments_.erase(it);
  }
}

void CachingAllocator::release_all() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [base, bytes] : segments_) system_free(base);
  segments_.clear();
  blocks_.clear();
  free_small_.clear();
  free_large_.clear();
  stats_ = AllocatorStats{};
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_bytes = stats_.in_use_bytes;
  stats_.peak_reserved_bytes = stats_.reserved_bytes;
}

void CachingAllocator::start_window() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.window_peak_bytes = stats_.in_use_bytes;
}

}  // namespace llm
