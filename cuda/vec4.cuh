// Four consecutive elements moved as one aligned word (16 bytes of f32 or i32, 8 of bf16, 4 of
// u8), for the memory-bound elementwise kernels: on an H200 a cast that loaded and stored one
// element at a time reached 47% of HBM bandwidth and AdamW 62% (bench/results/2026-11-30-gpu-run.md),
// since each warp kept too few bytes in flight. A kernel takes the 4-wide path only when every
// pointer it touches is aligned to its word (aligned4); a view at an odd offset, such as a ZeRO
// slice, keeps the element-wise kernel. Each element is computed by the same function either way,
// so the two paths give the same bits.
#pragma once
#include <cstdint>

#include "cuda/cuda_common.cuh"

namespace llm {

template <class T>
struct alignas(4 * sizeof(T)) Vec4 {
  T v[4];
};

template <class T>
__device__ __forceinline__ Vec4<T> load4(const T* base, int64_t group) {
  return reinterpret_cast<const Vec4<T>*>(base)[group];
}

template <class T>
__device__ __forceinline__ void store4(T* base, int64_t group, const Vec4<T>& x) {
  reinterpret_cast<Vec4<T>*>(base)[group] = x;
}

template <class T>
inline bool aligned4(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % sizeof(Vec4<T>) == 0;
}

// A 4-wide kernel walks groups 0 .. n / 4 - 1 (GRID_STRIDE_LOOP(group, n / 4)); the n % 4
// elements past the last group go to the first threads of block 0: this thread's one, or -1.
__device__ __forceinline__ int64_t tail_of_4(int64_t n) {
  const int64_t i = (n / 4) * 4 + threadIdx.x;
  return blockIdx.x == 0 && i < n ? i : -1;
}

// Blocks for a 4-wide kernel over n elements (at least one: block 0 takes the tail).
inline unsigned grid_for_groups_of_4(int64_t n) { return grid_for(n / 4); }

}  // namespace llm
