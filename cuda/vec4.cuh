// Four consecutive elements moved as one aligned word (16 bytes of f32 or i32, 8 of bf16, 4 of
// u8), for the memory-bound elementwise kernels: on an H200 a cast that loaded and stored one
// element at a time reached 47% of HBM bandwidth and AdamW 62% (bench/results/2026-11-30-gpu-run.md),
// since each warp kept too few bytes in flight. A kernel takes the 4-wide path only when every
// pointer it touches is aligned to its word (aligned4); a view at an odd offset, such as a ZeRO
// slice, keeps the element-wise kernel. Each element is computed by the same function either way,
// and the files that include this compile without FMA contraction (CMakeLists.txt), so the two
// paths give the same bits. Since these changes: cast 70% and AdamW 82.5% of an H200's bandwidth
// (2026-12-04-gpu-run.md).
#pragma once
#include <cstdint>
#include <type_traits>

#include "cuda/cuda_common.cuh"

namespace llm {

// W consecutive elements as one aligned word. A row kernel templated on W (1 or 4) is written
// once: W = 1 is its element-wise form.
template <class T, int W>
struct alignas(W * sizeof(T)) VecN {
  T v[W];
};
template <class T>
using Vec4 = VecN<T, 4>;

template <int W, class T>
__device__ __forceinline__ VecN<T, W> load_vec(const T* base, int64_t group) {
  return reinterpret_cast<const VecN<T, W>*>(base)[group];
}

template <int W, class T>
__device__ __forceinline__ void store_vec(T* base, int64_t group, const VecN<T, W>& x) {
  reinterpret_cast<VecN<T, W>*>(base)[group] = x;
}

template <class T>
__device__ __forceinline__ Vec4<T> load4(const T* base, int64_t group) {
  return load_vec<4>(base, group);
}

template <class T>
__device__ __forceinline__ void store4(T* base, int64_t group, const Vec4<T>& x) {
  store_vec<4>(base, group, x);
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

// The elementwise loop of a kernel templated on W (1 or 4) over n elements: f(width, unit) with
// width a std::integral_constant<int, K>, for units of K elements: each of this thread's
// grid-stride units of W, then (W = 4) one of the n % 4 tail elements on block 0's first threads.
template <int W, class F>
__device__ __forceinline__ void for_each_vec(int64_t n, F&& f) {
  GRID_STRIDE_LOOP(unit, n / W) f(std::integral_constant<int, W>{}, unit);
  if constexpr (W > 1) {
    if (const int64_t i = tail_of_4(n); i >= 0) f(std::integral_constant<int, 1>{}, i);
  }
}

// Launches `launch(width, blocks)` with width std::integral_constant<int, 4> and the blocks of
// grid_for_groups_of_4 when `aligned` (every pointer on a 4-element word), else width 1.
template <class Launch>
void launch_vec(int64_t n, bool aligned, Launch&& launch) {
  if (aligned)
    launch(std::integral_constant<int, 4>{}, grid_for_groups_of_4(n));
  else
    launch(std::integral_constant<int, 1>{}, grid_for(n));
}

// Whether rows of `columns` elements, the first at each pointer given, all start on 4-element
// words: then a row kernel may take them 4 at a time.
template <class... Ptrs>
inline bool rows_aligned4(int64_t columns, const Ptrs*... rows) {
  return columns % 4 == 0 && (aligned4<Ptrs>(rows) && ...);
}

// A row kernel's launch at its width: launch(width) with width std::integral_constant<int, 4> when
// rows_aligned4(columns, rows...), else std::integral_constant<int, 1>.
template <class Launch, class... Ptrs>
void with_row_width(int64_t columns, Launch&& launch, const Ptrs*... rows) {
  if (rows_aligned4(columns, rows...))
    launch(std::integral_constant<int, 4>{});
  else
    launch(std::integral_constant<int, 1>{});
}

}  // namespace llm
