// The caching allocator: one per device. Freed blocks are kept and handed out again, so a
// training step allocates nothing new from the system after the first one. As PyTorch's, it cuts
// a cached block to the size asked for and merges a freed block with its free neighbours, so rows
// of changing lengths reuse the same memory instead of caching a block of every size they asked
// for. It counts the bytes in use and their peak, which is how tests and llm_bench see the memory
// an algorithm needs, and the bytes held from the system (what a device's memory must hold).
#pragma once
#include <cstddef>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <utility>

namespace llm {

struct AllocatorStats {
  size_t in_use_bytes = 0;    // bytes asked for and not freed (each request rounded up to 512)
  size_t peak_bytes = 0;      // highest in_use_bytes since the last reset_peak()
  size_t window_peak_bytes = 0;  // highest in_use_bytes since the last start_window()
  size_t reserved_bytes = 0;  // bytes held from the system (in use + cached)
  size_t peak_reserved_bytes = 0;  // highest reserved_bytes since the last reset_peak()
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
  // A piece of one system allocation (a segment). Requests of at most 1 MiB take pieces of small
  // segments (2 MiB), larger ones of large segments (20 MiB, or over 10 MiB their own size), so
  // that small long-lived tensors do not pin the large blocks in between that could merge.
  struct Block {
    size_t bytes;
    char* segment;  // blocks merge only within one segment
    bool small;     // its segment's pool
    size_t asked;   // the request it serves, rounded (it may hold up to 1 MiB more); 0: free
  };
  using FreeBlocks = std::set<std::pair<size_t, char*>>;  // (bytes, address): best fit, lowest first

  char* take_cached(size_t rounded, bool small);  // nullptr when no free block fits
  void add_segment(size_t rounded, bool small);   // throws when the system has no memory left
  FreeBlocks& pool(bool small) { return small ? free_small_ : free_large_; }
  void free_cached_locked();  // every segment with no block in use back to the system

  mutable std::mutex mutex_;
  std::map<char*, Block> blocks_;  // every block, by address: a block's neighbours are its map neighbours
  FreeBlocks free_small_, free_large_;
  std::unordered_map<char*, size_t> segments_;  // base -> bytes
  AllocatorStats stats_;
};

}  // namespace llm
