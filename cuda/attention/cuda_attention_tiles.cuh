// Tile machinery of the tiled attention kernels (cuda_flash_attention.cu): tile loads into
// shared memory, the three 64 x 64 tile products on CUDA cores in f32, and the masking of a score
// tile; which keys a query sees is engine/attention_mask.h, the code the CPU reference runs too.
// The layout follows the CPU reference (engine/cpu/cpu_flash_attention.cpp): a query tile of
// kAttnBlockM rows against key tiles of kAttnBlockN.
#pragma once
#include "cuda/cuda_common.cuh"
#include "engine/attention_mask.h"

namespace llm {
namespace tiles {

constexpr int kM = static_cast<int>(kAttnBlockM), kN = static_cast<int>(kAttnBlockN);
// 16 x 16 threads. Thread (ty, tx) = (threadIdx.x / 16, threadIdx.x % 16) owns the tile rows
// 4 ty .. 4 ty + 3 and the columns tx + 16 j: a 4 x 4 piece of a 64 x 64 score tile, or 4 rows
// x D/16 columns of a 64 x D output tile. A row's 16 owners are one half-warp, so row maxima and
// sums are shuffles within it.
constexpr int kTileThreads = 256;
static_assert(kM == 64 && kN == 64, "the thread layout assumes 64 x 64 tiles");
constexpr int kPLd = kN + 1;  // row stride of a score tile in shared memory

// Shared-memory tiles of D columns are stored with row stride D + 1: for D = 32, 64 and 128 that
// is 1 modulo 32 banks, so the 16 different rows a half-warp reads land in 16 different banks.
template <int D>
__host__ __device__ constexpr int ld() { return D + 1; }

// Rows [0, rows) of a head matrix (row stride `stride` elements) into a 64 x D f32 tile; the
// rows after them are zero, so padding contributes nothing (and never NaN) to the products.
template <class T, int D>
__device__ void load_tile(float* tile, const T* src, int64_t stride, int64_t rows) {
  for (int e = threadIdx.x; e < 64 * D; e += kTileThreads) {
    const int r = e / D, c = e % D;
    tile[r * ld<D>() + c] = r < rows ? to_f32(src[r * stride + c]) : 0.0f;
  }
}

// s[i][j] = A[4 ty + i] . B[tx + 16 j] over D: a score tile Q K^T (or dO V^T).
template <int D>
__device__ void tile_abt(const float* a, const float* b, float s[4][4]) {
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) s[i][j] = 0.0f;
#pragma unroll 4
  for (int d = 0; d < D; d++) {
    float av[4], bv[4];
#pragma unroll
    for (int i = 0; i < 4; i++) av[i] = a[(4 * ty + i) * ld<D>() + d];
#pragma unroll
    for (int j = 0; j < 4; j++) bv[j] = b[(tx + 16 * j) * ld<D>() + d];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < 4; j++) s[i][j] = fmaf(av[i], bv[j], s[i][j]);
  }
}

// acc[i][c] += sum_j P[4 ty + i][j] X[j][tx + 16 c]: P V (or dS K) into a 64 x D output tile.
template <int D>
__device__ void tile_ab(const float* p, const float* x, float acc[4][D / 16]) {
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll 4
  for (int j = 0; j < kN; j++) {
    float pv[4], xv[D / 16];
#pragma unroll
    for (int i = 0; i < 4; i++) pv[i] = p[(4 * ty + i) * kPLd + j];
#pragma unroll
    for (int c = 0; c < D / 16; c++) xv[c] = x[j * ld<D>() + tx + 16 * c];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int c = 0; c < D / 16; c++) acc[i][c] = fmaf(pv[i], xv[c], acc[i][c]);
  }
}

// acc[i][c] += sum_r P[r][4 ty + i] X[r][tx + 16 c]: P^T dO (or dS^T Q) into a key-row tile.
template <int D>
__device__ void tile_atb(const float* p, const float* x, float acc[4][D / 16]) {
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll 4
  for (int r = 0; r < kM; r++) {
    float pv[4], xv[D / 16];
#pragma unroll
    for (int i = 0; i < 4; i++) pv[i] = p[r * kPLd + 4 * ty + i];
#pragma unroll
    for (int c = 0; c < D / 16; c++) xv[c] = x[r * ld<D>() + tx + 16 * c];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int c = 0; c < D / 16; c++) acc[i][c] = fmaf(pv[i], xv[c], acc[i][c]);
  }
}

// Scaled, biased and masked scores of the tile rows [i0, i0 + 64) x keys [j0, j0 + 64): -inf
// where the key is outside the row's span (in shared memory), which also covers rows and keys
// past the sequence. bias is the head's (S, S) slice or null.
__device__ inline void mask_scores(const MaskView& mask, const float* bias, float scale,
                                   int64_t i0, int64_t j0, const KeySpan* spans, float s[4][4]) {
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int r = 4 * ty + i;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int64_t key = j0 + tx + 16 * j;
      const bool seen = spans[r].contains(key);
      const float b = seen && bias ? bias[(i0 + r) * mask.S + key] : 0.0f;
      s[i][j] = seen ? s[i][j] * scale + b : -INFINITY;
    }
  }
}

// Max and sum over a row's 16 owners (one half-warp: xor offsets below 16 stay inside it).
__device__ __forceinline__ float row_max16(float v) {
  for (int off = 8; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}
__device__ __forceinline__ float row_sum16(float v) {
  for (int off = 8; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// One call's problem: q (B, S, H, D); k, v (B, S, Hkv, D); contiguous, so a head's rows are
// H*D (or Hkv*D) elements apart and tiles are strided reads, never copies.
template <class T>
struct Problem {
  const T *q, *k, *v;
  int64_t S, H, Hkv, heads_per_kv;
  float scale;
  MaskView mask;

  __device__ int64_t q_row(int64_t b, int64_t i, int64_t h, int D) const {
    return ((b * S + i) * H + h) * D;
  }
  __device__ int64_t kv_row(int64_t b, int64_t j, int64_t kvh, int D) const {
    return ((b * S + j) * Hkv + kvh) * D;
  }
};

template <class T>
Problem<T> make_problem(const Tensor& q, const Tensor& k, const Tensor& v, const MaskView& mask) {
  Problem<T> p;
  p.q = q.data<T>();
  p.k = k.data<T>();
  p.v = v.data<T>();
  p.S = q.size(1);
  p.H = q.size(2);
  p.Hkv = k.size(2);
  p.heads_per_kv = p.H / p.Hkv;
  p.scale = 1.0f / sqrtf(static_cast<float>(q.size(3)));
  p.mask = mask;
  return p;
}

// Lets `kernel` take `bytes` of dynamic shared memory (above 48 KiB needs the opt-in).
template <class K>
void allow_smem(K kernel, size_t bytes) {
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(bytes)));
}

}  // namespace tiles
}  // namespace llm
