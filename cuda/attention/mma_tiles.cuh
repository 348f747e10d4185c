// defines: c_row, c_col, QueryRows, load_query_rows, first_key_tile, store_rows_from,
// store_warp_rows, dkdv_query_rows, dispatch_head_dim: the pieces the tensor-core attention
// kernels share (v2: cuda_flash_attention_mma.cu, v3: flash_attention_v3*.cu, v4:
// flash_attention_v4*.cu), a query tile's key spans and where a lane's C elements sit.
#pragma once
#include <type_traits>

#include "cuda/attention/cuda_attention_tiles.cuh"
#include "cuda/attention/mma_fragments.cuh"

namespace llm {
namespace tiles {

constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;

// The row of a 16-row C tile and the column that C element i of n-tile t of this lane holds.
__device__ inline int c_row(int i) { return mma::c_coord(threadIdx.x % 32, i).row; }
__device__ inline int c_col(int t, int i) { return 8 * t + mma::c_coord(threadIdx.x % 32, i).col; }

// The query rows of a tile in shared memory: key spans, lse (+inf past the sequence, so P = 0
// there) and delta.
template <int R>
struct QueryRows {
  KeySpan span[R];
  float lse[R], delta[R];
};

template <int R>
__device__ void load_query_rows(const Problem<bf16>& p, QueryRows<R>& rows, const float* lse,
                                const float* delta, int64_t b, int64_t h, int64_t i0, int64_t m) {
  const int r = threadIdx.x;
  if (r >= R) return;
  rows.span[r] = p.mask.keys(b, h, i0 + r);  // {0, 0} past the sequence
  rows.lse[r] = r < m && lse ? lse[(b * p.H + h) * p.S + i0 + r] : INFINITY;
  rows.delta[r] = r < m && delta ? delta[(b * p.H + h) * p.S + i0 + r] : 0.0f;
}

// The first key tile of a query tile's band: spans never move left as the query moves right, so
// the band runs from the first row's lo (down to its tile start) to the last row's hi.
template <int R>
__device__ int64_t first_key_tile(const QueryRows<R>& rows) { return rows.span[0].lo / kN * kN; }

// Writes a warp's 16 x D accumulator (C fragments, acc[D / 8]), tile rows r0 .. r0 + 15, times
// mul: tile row r, if r < rows, to row_ptr(r), as bf16 where that is a bf16 pointer and as f32
// (a partial sum that a later pass adds up) where it is a float one.
template <int D, class RowPtr>
__device__ void store_rows_from(int r0, const float (&acc)[D / 8][4], float mul, int64_t rows,
                                RowPtr&& row_ptr) {
#pragma unroll
  for (int x = 0; x < 2; x++) {
    const int r = r0 + c_row(2 * x);
    if (r >= rows) continue;
    auto* row = row_ptr(r);
#pragma unroll
    for (int t = 0; t < D / 8; t++) {
      const float lo = mul * acc[t][2 * x], hi = mul * acc[t][2 * x + 1];
      if constexpr (std::is_same_v<decltype(row), float*>)
        *reinterpret_cast<float2*>(row + c_col(t, 2 * x)) = make_float2(lo, hi);
      else
        *reinterpret_cast<uint32_t*>(row + c_col(t, 2 * x)) = mma::pack_bf16(lo, hi);
    }
  }
}
// The same where warp w owns tile rows 16 w .. (v2, v3).
template <int D, class RowPtr>
__device__ void store_warp_rows(const float (&acc)[D / 8][4], float mul, int64_t rows,
                                RowPtr&& row_ptr) {
  store_rows_from<D>(16 * (threadIdx.x / 32), acc, mul, rows, row_ptr);
}

// The dK/dV kernels' query tile. Each lane keeps dK and dV (D / 2 floats each) and two score
// fragments (rows / 4 floats each) in registers; 32 rows at head_dim 128 keep that near 160.
__host__ __device__ constexpr int dkdv_query_rows(int D) { return D <= 64 ? 64 : 32; }

// f(std::integral_constant<int, D>{}) for head_dim 64 or 128 (mma_attention_takes checked).
template <class F>
void dispatch_head_dim(int64_t D, F&& f) {
  if (D == 64) f(std::integral_constant<int, 64>{});
  else f(std::integral_constant<int, 128>{});
}

}  // namespace tiles
}  // namespace llm
