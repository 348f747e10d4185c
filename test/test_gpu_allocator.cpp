// GPU (ctest label gpu): the device caching allocator reuses freed blocks and counts bytes.
// Without a CUDA device it says so and exits 77, which ctest reports as skipped.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "cuda/device_allocator.h"

using namespace llm;

TEST_CASE("device allocator: no cudaMalloc for a block freed and asked for again") {
  CudaDeviceAllocator alloc(0);
  void* a = alloc.allocate(3 << 20);
  CHECK(alloc.stats().in_use_bytes == (3u << 20));
  alloc.deallocate(a);
  CHECK(alloc.stats().in_use_bytes == 0);
  size_t system_allocs = alloc.stats().system_allocs;
  void* b = alloc.allocate(3 << 20);
  CHECK(b == a);
  CHECK(alloc.stats().system_allocs == system_allocs);
  CHECK(alloc.stats().peak_bytes == (3u << 20));
  alloc.deallocate(b);
}

int main(int argc, char** argv) {
  if (cuda_device_count() == 0) {
    std::printf("skipped: no CUDA device visible\n");
    return 77;
  }
  return doctest::Context(argc, argv).run();
}
