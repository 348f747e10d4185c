// The caching allocator: one per device. Freed blocks are kept and handed out again, so a
// training step allocates nothing new from the system after the first one. It counts the bytes in
// use and their peak, which is how tests and llm_bench see the memory an algorithm needs.
#pragma once
#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>

namespace llm {

struct AllocatorStats {
  size_t in_use_bytes = 0;    // bytes of blocks handed out now
  size_t peak_bytes = 0;      // highest in_use_bytes since the last reset_peak()
  size_t window_peak_bytes = 0;  // highest in_use_bytes since the last start_window()
  size_t reserved_bytes = 0;  // bytes held from the system (in use + cached)
  size_t system_allocs = 0;   // how many times the system allocator was called
};

class CachingAllocator {
 public:
  virtual ~CachingAllocator() = default;
  void* allocate(size_t bytes);
  void deallocate(void* ptr);
  void empty_cache();  // return every cached (free) block to the system
  AllocatorStats stats() const;
  void reset_peak();
  // Starts a window whose own peak (window_peak_bytes) a phase measures (a sharded start-up, a
  // restore) while peak_bytes goes on counting the run's.
  void start_window();

 protected:
  // Blocks come from here; the CPU backend uses aligned host memory, the CUDA one cudaMalloc.
  virtual void* system_alloc(size_t bytes) = 0;
  virtual void system_free(void* ptr) = 0;
  void release_all();  // derived destructors call this while their system_free still works

 private:
  void free_cached_locked();

  mutable std::mutex mutex_;
  std::multimap<size_t, void*> free_blocks_;       // size -> block, for best-fit reuse
  std::unordered_map<void*, size_t> block_bytes_;  // every block we hold, in use or cached
  AllocatorStats stats_;
};

}  // namespace llm
