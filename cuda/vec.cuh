// Consecutive elements moved as one aligned word, for the memory-bound kernels: on an H200 a cast
// that loaded and stored one element at a time reached 47% of HBM bandwidth and AdamW 62%
// (bench/results/2026-11-30-gpu-run.md), since each warp kept too few bytes in flight. Elementwise
// kernels take a 16-byte word of their narrowest type (launch_vec: 4 f32, 8 bf16), row kernels the
// width they name (with_row_width: 4 elements, rmsnorm's a 16-byte word). A kernel takes the wide path only when every pointer it touches is
// aligned to its word; a view at an odd offset, such as a ZeRO slice, keeps the element-wise
// kernel. Each element is computed by the same function either way, and the files whose
// per-element arithmetic could contract compile without FMA contraction (CMakeLists.txt), so the
// two paths give the same bits (the reductions' widths sum in other orders: cuda_reduce.cu).
// 4 elements a load: cast 70% and AdamW 82.5% of an H200's bandwidth (2026-12-04-gpu-run.md).
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cuda/cuda_common.cuh"

namespace llm {

// W consecutive elements as one aligned word. A kernel templated on W (1, 4 or 8) is written once:
// W = 1 is its element-wise form.
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

// Whether every pointer lies on a word of W of its elements (null counts: an absent operand).
template <int W, class... Ptrs>
inline bool aligned_to_words(const Ptrs*... ptrs) {
  return ((reinterpret_cast<uintptr_t>(ptrs) % (W * sizeof(Ptrs)) == 0) && ...);
}

// A kernel W elements wide walks units 0 .. n / W - 1 (GRID_STRIDE_LOOP(unit, n / W)); the n % W
// elements past the last unit go to the first threads of block 0 (`block`: this block's index
// among those that share n): this thread's one, or -1.
template <int W>
__device__ __forceinline__ int64_t tail_of(int64_t n, unsigned block) {
  const int64_t i = (n / W) * W + threadIdx.x;
  return block == 0 && i < n ? i : -1;
}

// The elementwise loop of a kernel templated on W over n elements: f(width, unit) with width a
// std::integral_constant<int, K>, for units of K elements: each of this thread's grid-stride
// units of W, then (W > 1) one of the n % W tail elements on block 0's first threads.
template <int W, class F>
__device__ __forceinline__ void for_each_vec(int64_t n, F&& f) {
  GRID_STRIDE_LOOP(unit, n / W) f(std::integral_constant<int, W>{}, unit);
  if constexpr (W > 1) {
    if (const int64_t i = tail_of<W>(n, blockIdx.x); i >= 0) f(std::integral_constant<int, 1>{}, i);
  }
}

// K elements of x at `unit`, each through op(value, its place j in the unit) in f32, stored at the
// same place in out (which may be x).
template <int K, class T, class Op>
__device__ __forceinline__ void map_unit(const T* x, T* out, int64_t unit, Op&& op) {
  const VecN<T, K> v = load_vec<K>(x, unit);
  VecN<T, K> o;
#pragma unroll
  for (int j = 0; j < K; j++) o.v[j] = from_f32<T>(op(to_f32(v.v[j]), j));
  store_vec<K>(out, unit, o);
}

// The elements an elementwise kernel over these storage types takes a load: a 16-byte word of the
// narrowest (4 f32, 8 bf16; 8 u8, which caps the i32 or f32 beside them at 32 bytes). With bf16
// taken 4 at a time (8-byte loads), its kernels stayed near 70% of an H200's HBM bandwidth, AdamW
// on bf16 state 72%, where f32's 16-byte loads reached 82.5% (2026-12-04-gpu-run.md).
template <class... Ts>
constexpr int wide_width() {
  return std::min({sizeof(Ts)...}) >= 4 ? 4 : 8;
}

// Launches `launch(width, blocks)` over n elements: width std::integral_constant<int, W> with
// W = wide_width of the pointers' types when every pointer lies on a word of W of its elements,
// else width 1; blocks for that width.
template <class Launch, class... Ptrs>
void launch_vec(int64_t n, Launch&& launch, const Ptrs*... ptrs) {
  constexpr int W = wide_width<Ptrs...>();
  if (aligned_to_words<W>(ptrs...))
    launch(std::integral_constant<int, W>{}, grid_for(n / W));
  else
    launch(std::integral_constant<int, 1>{}, grid_for(n));
}

// A row kernel's launch at its width: launch(width) with width std::integral_constant<int, W> when
// rows of `columns` elements, the first at each pointer given, all start on words of W elements,
// else std::integral_constant<int, 1>.
template <int W = 4, class Launch, class... Ptrs>
void with_row_width(int64_t columns, Launch&& launch, const Ptrs*... rows) {
  if (columns % W == 0 && aligned_to_words<W>(rows...))
    launch(std::integral_constant<int, W>{});
  else
    launch(std::integral_constant<int, 1>{});
}

}  // namespace llm
