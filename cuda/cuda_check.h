// CUDA_CHECK: turns a failed CUDA runtime call into an exception naming the call, the CUDA
// error and where it happened.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#define CUDA_CHECK(call)                                                                   \
  do {                                                                                     \
    cudaError_t err_ = (call);                                                             \
    if (err_ != cudaSuccess)                                                               \
      throw std::runtime_error(std::string(#call) + " failed: " + cudaGetErrorString(err_) + \
                               " (" __FILE__ ":" + std::to_string(__LINE__) + ")");         \
  } while (0)
