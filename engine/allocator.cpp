// defines: CachingAllocator (best-fit reuse of freed blocks, byte counters)
#include "engine/allocator.h"

#include <stdexcept>
#include <string>

namespace llm {

namespace {
// 512-byte granularity: small enough to waste little, coarse enough that the slightly different
// sizes of one step's tensors land on the same blocks.
constexpr size_t kGranule = 512;
// A cached block is reused for a request only if it is at most this many times larger, so one
// huge free block is not pinned by a tiny tensor.
constexpr size_t kMaxOversize = 2;
}  // namespace

void* CachingAllocator::allocate(size_t bytes) {
  size_t rounded = ((bytes + kGranule - 1) / kGranule) * kGranule;
  if (rounded == 0) rounded = kGranule;
  std::lock_guard<std::mutex> lock(mutex_);
  void* ptr = nullptr;
  auto it = free_blocks_.lower_bound(rounded);
  if (it != free_blocks_.end() && it->first <= rounded * kMaxOversize) {
    ptr = it->second;
    rounded = it->first;
    free_blocks_.erase(it);
  } else {
    ptr = system_alloc(rounded);
    if (!ptr) {
      free_cached_locked();  // drop the cache and try once more before giving up
      ptr = system_alloc(rounded);
      if (!ptr)
        throw std::runtime_error("out of memory allocating " + std::to_string(bytes) +
                                 " bytes (" + std::to_string(stats_.in_use_bytes) +
                                 " bytes in use)");
    }
    block_bytes_[ptr] = rounded;
    stats_.reserved_bytes += rounded;
    stats_.system_allocs++;
  }
  stats_.in_use_bytes += rounded;
  if (stats_.in_use_bytes > stats_.peak_bytes) stats_.peak_bytes = stats_.in_use_bytes;
  if (stats_.in_use_bytes > stats_.window_peak_bytes) stats_.window_peak_bytes = stats_.in_use_bytes;
  return ptr;
}

void CachingAllocator::deallocate(void* ptr) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  size_t size = block_bytes_.at(ptr);
  stats_.in_use_bytes -= size;
  free_blocks_.emplace(size, ptr);
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  free_cached_locked();
}

void CachingAllocator::free_cached_locked() {
  for (auto& [size, block] : free_blocks_) {
    system_free(block);
    block_bytes_.erase(block);
    stats_.reserved_bytes -= size;
  }
  free_blocks_.clear();
}

void CachingAllocator::release_all() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [block, size] : block_bytes_) system_free(block);
  block_bytes_.clear();
  free_blocks_.clear();
  stats_ = AllocatorStats{};
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_bytes = stats_.in_use_bytes;
}

void CachingAllocator::start_window() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.window_peak_bytes = stats_.in_use_bytes;
}

}  // namespace llm
