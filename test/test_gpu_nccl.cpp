// GPU (ctest label gpu): the NCCL collectives behind data parallel, in a group of one (one GPU
// cannot host two NCCL ranks): all-reduce, reduce-scatter and all-gather (f32 and bf16) keep the
// data, ordered with the compute stream. Without a CUDA device it says so and exits 77 (skipped).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "cuda/device_allocator.h"
#include "engine/communicator.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

TEST_CASE("NCCL group of one: collectives leave the data as it is") {
  const DeviceCollectivesFactory* factory = find_device_collectives(DeviceType::cuda);
  REQUIRE(factory != nullptr);
  const Device gpu = Device::cuda(0);
  std::unique_ptr<DeviceCollectives> nccl = factory->create(gpu, 0, 1, factory->make_id());
  Tensor host = randn({1000});
  Tensor data = host.to(gpu);
  nccl->allreduce_sum(data);
  nccl->wait();
  CHECK(max_abs_diff(data, host) == 0.0f);
  Tensor slice = Tensor::zeros({1000}, DType::f32, gpu);
  nccl->reduce_scatter_sum(data, slice);
  nccl->wait();
  CHECK(max_abs_diff(slice, host) == 0.0f);
  nccl->allgather(data);
  nccl->wait();
  CHECK(max_abs_diff(data, host) == 0.0f);
  // ZeRO's bf16 compute weights are all-gathered as bf16 (ncclBfloat16): an odd count, bits kept.
  Tensor half = randn({999}).to(DType::bf16);
  Tensor on_gpu = half.to(gpu);
  nccl->allgather(on_gpu);
  nccl->wait();
  CHECK(on_gpu.to(Device::cpu()).to_floats() == half.to_floats());
}

int main(int argc, char** argv) {
  if (cuda_device_count() == 0) {
    std::printf("skipped: no CUDA device visible\n");
    return 77;
  }
  return doctest::Context(argc, argv).run();
}
