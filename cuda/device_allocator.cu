// defines: cuda_device_count, CudaDeviceAllocator (cudaMalloc behind the caching allocator)
#include "cuda/cuda_check.h"
#include "cuda/device_allocator.h"

namespace llm {

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error so later calls start clean
    return 0;
  }
  return count;
}

// A backend held by a static registry is destroyed after the CUDA runtime has unloaded itself at
// exit, when cudaFree can only fail; a destructor must not throw, so those failures are dropped.
CudaDeviceAllocator::~CudaDeviceAllocator() {
  try {
    release_all();
  } catch (const std::exception&) {
  }
}

void* CudaDeviceAllocator::system_alloc(size_t bytes) {
  CUDA_CHECK(cudaSetDevice(device_));
  void* ptr = nullptr;
  cudaError_t err = cudaMalloc(&ptr, bytes);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    return nullptr;  // the caller empties the cache and tries again
  }
  CUDA_CHECK(err);
  return ptr;
}

void CudaDeviceAllocator::system_free(void* ptr) {
  CUDA_CHECK(cudaSetDevice(device_));
  CUDA_CHECK(cudaFree(ptr));
}

}  // namespace llm
