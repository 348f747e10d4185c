// Shared by the kernels: f32 <-> storage-type conversion, launch sizes, deterministic block
// reductions, and the dtype dispatch from a Tensor's DType to a kernel's element type.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "engine/check.h"

namespace llm {

using bf16 = __nv_bfloat16;

// Loads widen to f32 and stores round to nearest even, as the CPU's f32_to_bf16.
__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f32(int32_t x) { return static_cast<float>(x); }
__device__ __forceinline__ float to_f32(uint8_t x) { return static_cast<float>(x); }
template <class T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <>
__device__ __forceinline__ bf16 from_f32<bf16>(float x) { return __float2bfloat16_rn(x); }
template <>
__device__ __forceinline__ int32_t from_f32<int32_t>(float x) { return static_cast<int32_t>(x); }
template <>
__device__ __forceinline__ uint8_t from_f32<uint8_t>(float x) { return static_cast<uint8_t>(x); }

constexpr int kThreads = 256;  // threads per block of the elementwise and row kernels

// for (i = this thread's first element; i < n; i += every thread of the grid).
#define GRID_STRIDE_LOOP(i, n)                                             \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); \
       i += int64_t(gridDim.x) * blockDim.x)

// Blocks for a grid-stride loop over n elements. The cap keeps launches cheap; it depends on n
// only, never on the GPU, so every reduction built on it sums in the same order on any device.
inline unsigned grid_for(int64_t n, int64_t cap = 4096) {
  int64_t blocks = (n + kThreads - 1) / kThreads;
  if (blocks < 1) blocks = 1;
  return static_cast<unsigned>(blocks < cap ? blocks : cap);
}

// The SMs of the process's device (one device a process), asked once.
inline int device_sms() {
  static const int sms = [] {
    int device = 0, n = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
    return n;
  }();
  return sms;
}

// How many CTAs of `kernel` (`threads` each, no dynamic shared memory) the device holds at once:
// one wave, for kernels whose CTAs walk the work themselves.
template <class Kernel>
int64_t resident_ctas(Kernel kernel, int threads) {
  int per_sm = 0;
  CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, 0));
  return int64_t(per_sm > 0 ? per_sm : 1) * device_sms();
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024) in a fixed tree order, so the
// result is bit-identical run to run. Every thread gets the total. Uses 32 words of `shared`.
template <class A>
__device__ A block_sum(A v, A* shared) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  __syncthreads();  // `shared` may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < warps ? shared[lane] : A(0);
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

__device__ __forceinline__ float block_max(float v, float* shared) {
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < warps ? shared[lane] : -INFINITY;
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

// Calls f(T{}) with T = float or bf16 for the tensor's dtype; other dtypes are refused by name.
template <class F>
void dispatch_float(const char* op, const Tensor& t, F&& f) {
  if (t.dtype() == DType::f32) {
    f(float{});
  } else if (t.dtype() == DType::bf16) {
    f(bf16{});
  } else {
    throw std::runtime_error(std::string(op) + " on CUDA takes f32 or bf16 tensors; got " +
                             t.str());
  }
}

// The op's operands must agree in dtype (the kernels are instantiated per element type).
inline void require_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  LLM_CHECK(a.dtype() == b.dtype(), std::string(op) + " on CUDA: " + a.str() + " and " +
                                        b.str() + " must have the same dtype");
}

}  // namespace llm
