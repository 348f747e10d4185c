// The per-device caching allocator: cudaMalloc only when no cached block fits, so a steady-state
// training step makes no cudaMalloc call; also how many CUDA devices are usable.
#pragma once
#include "engine/allocator.h"

namespace llm {

// 0 when the driver is missing or no device is visible: never throws.
int cuda_device_count();

class CudaDeviceAllocator : public CachingAllocator {
 public:
  explicit CudaDeviceAllocator(int device) : device_(device) {}
  ~CudaDeviceAllocator() override;

 protected:
  void* system_alloc(size_t bytes) override;  // nullptr when the device is out of memory
  void system_free(void* ptr) override;

 private:
  int device_;
};

}  // namespace llm
