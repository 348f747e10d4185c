// CUDA_CHECK: turns a failed CUDA runtime call into an exception naming the call, the CUDA
// error and where it happened. CUBLAS_CHECK does the same for cuBLAS(Lt) calls, and
// CUDA_CHECK_OP, after a kernel launch, names the op and the shapes of its tensors as well.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "engine/tensor.h"

#define CUDA_CHECK(call)                                                                   \
  do {                                                                                     \
    cudaError_t err_ = (call);                                                             \
    if (err_ != cudaSuccess)                                                               \
      throw std::runtime_error(std::string(#call) + " failed: " + cudaGetErrorString(err_) + \
                               " (" __FILE__ ":" + std::to_string(__LINE__) + ")");         \
  } while (0)

#define CUBLAS_CHECK(call)                                                                  \
  do {                                                                                      \
    cublasStatus_t st_ = (call);                                                            \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                       \
      throw std::runtime_error(std::string(#call) + " failed: " + cublasLtGetStatusName(st_) + \
                               " (" __FILE__ ":" + std::to_string(__LINE__) + ")");          \
  } while (0)

namespace llm {

// Throws "op on f32[2, 3] cuda:0, ...: <CUDA error> (file:line)" when err is not cudaSuccess.
void check_op(cudaError_t err, const char* op,
              std::initializer_list<std::reference_wrapper<const Tensor>> tensors,
              const char* file, int line);

}  // namespace llm

// After a kernel launch: a bad launch (grid, shared memory, a missing kernel image for this GPU)
// is reported with the op and its tensors. Errors inside a kernel surface at the next sync, or
// here when LLM_CUDA_SYNC=1 (check_op then waits for the kernel).
#define CUDA_CHECK_OP(op, ...) \
  ::llm::check_op(cudaGetLastError(), op, {__VA_ARGS__}, __FILE__, __LINE__)
