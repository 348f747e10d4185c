// GPU (ctest label gpu): the device caching allocator reuses freed blocks, cuts them to the
// request and counts bytes.
// Without a CUDA device it says so and exits 77, which ctest reports as skipped.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <vector>

#include "cuda/device_allocator.h"
#include "engine/backend.h"
#include "engine/tensor.h"

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

// The pieces of one freed cudaMalloc block hold their own values: two tensors cut from a freed
// 24 MiB one, written on the device and read back, with no cudaMalloc for them.
TEST_CASE("device allocator: a freed block cut for two smaller tensors, each holding its own values") {
  const Device gpu = Device::cuda(0);
  CachingAllocator& alloc = backend(gpu).allocator();
  { Tensor big = Tensor::zeros({6 << 20}, DType::f32, gpu); }  // 24 MiB, then freed
  const size_t system_allocs = alloc.stats().system_allocs;
  Tensor a = Tensor::full({11 << 18}, 1.5f, DType::f32, gpu);  // 11 MiB
  Tensor b = Tensor::full({12 << 18}, -2.0f, DType::f32, gpu);  // 12 MiB
  CHECK(alloc.stats().system_allocs == system_allocs);
  const std::vector<float> av = a.to_floats(), bv = b.to_floats();
  CHECK(av.front() == 1.5f);
  CHECK(av.back() == 1.5f);
  CHECK(bv.front() == -2.0f);
  CHECK(bv.back() == -2.0f);
}

int main(int argc, char** argv) {
  if (cuda_device_count() == 0) {
    std::printf("skipped: no CUDA device visible\n");
    return 77;
  }
  return doctest::Context(argc, argv).run();
}
