// defines: the tile machinery of the v3 tensor-core attention kernels (flash_attention_v3.cu,
// flash_attention_v3_backward.cu): 16-byte cp.async tile copies, ldmatrix-fed mma tile products,
// and KvStages, K/V tiles in two shared-memory stages, each copied while the one before is used.
#pragma once
#include "cuda/attention/mma_fragments.cuh"
#include "cuda/attention/mma_tiles.cuh"

namespace llm {
namespace v3 {

using mma::Coord;
using tiles::Problem;

// 8 warps of 16 rows rather than FlashAttention-2's 4 of 32: each warp keeps v2's one-m16-tile
// structure (its 16 rows' accumulators, running max and sum in registers), and twice the threads
// issue the tile copies. Either way 128 rows share each tile loaded.
constexpr int kWarps = 8, kBlockThreads = 32 * kWarps;
constexpr int kRows = 16 * kWarps;  // a block's query tile (forward, dQ) or key tile (dK/dV)
constexpr int kKeys = tiles::kN;    // the key tile the query-tile loops step by
// Padding, not a swizzle: shared-memory rows of D + 8 bf16 (D = 64, 128) start 4 banks apart
// modulo 32, so the 8 row addresses of one ldmatrix matrix (16 bytes each) and the 8 16-byte
// cp.async stores of a quarter warp land in 8 distinct 4-bank groups: conflict-free, with the
// plain address arithmetic test_mma_layout checks. It costs 8 / D of the tiles (6% or 12%), which
// does not bind occupancy here (registers do).
constexpr int kPad = 8;

__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
  const uint32_t d = static_cast<uint32_t>(__cvta_generic_to_shared(dst));
  // src-size 0 writes 16 zero bytes and reads nothing.
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most N of this thread's copy groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Issues (does not wait for) the copy of rows [0, rows) of a head matrix (rows `stride` elements
// apart) into the R x D tile dst, row stride D + kPad; the rows after them are zero-filled, so an
// edge tile adds nothing to the products. A row's 16-byte pieces go to neighbouring threads.
template <int R, int D>
__device__ __forceinline__ void load_tile_async(bf16* dst, const bf16* src, int64_t stride,
                                                int64_t rows) {
  constexpr int kPieces = D / 8;
  static_assert(R * kPieces % kBlockThreads == 0, "every thread copies as many pieces");
#pragma unroll
  for (int k = 0; k < R * kPieces / kBlockThreads; k++) {
    const int e = threadIdx.x + k * kBlockThreads, r = e / kPieces, c = e % kPieces * 8;
    const bool valid = r < rows;
    cp_async_16(dst + r * (D + kPad) + c, src + (valid ? r * stride : 0) + c, valid);
  }
}

// acc (16 x 8 NT) += A B^T for one 16-wide k-slice: `a` is the slice's A fragment, bt points at
// column 0 of the slice in B^T's 8 NT rows (row stride ld, shared memory), read two n-tiles per
// ldmatrix. The NT mmas go to different accumulators, so none waits on the one before.
template <int NT>
__device__ __forceinline__ void mma_slice(float (&acc)[NT][4], const uint32_t a[4],
                                          const bf16* bt, int ld) {
  const Coord at = mma::ldsm_row_bt(threadIdx.x % 32);
#pragma unroll
  for (int t = 0; t < NT; t += 2) {
    uint32_t b[4];
    mma::ldmatrix_x4<false>(b, bt + (8 * t + at.row) * ld + at.col);
    mma::mma_16x8x16(acc[t], a, b);
    mma::mma_16x8x16(acc[t + 1], a, b + 2);
  }
}

// acc (16 x 8 NT) += A B^T over 16 KS columns, A's fragments in registers.
template <int KS, int NT>
__device__ __forceinline__ void mma_abt(float (&acc)[NT][4], const uint32_t (&a)[KS][4],
                                        const bf16* bt, int ld) {
#pragma unroll
  for (int kk = 0; kk < KS; kk++) mma_slice(acc, a[kk], bt + 16 * kk, ld);
}

// The same with A's 16 rows (row stride lda) in shared memory, one ldmatrix per k-slice.
template <int KS, int NT>
__device__ __forceinline__ void mma_abt(float (&acc)[NT][4], const bf16* a, int lda,
                                        const bf16* bt, int ldb) {
  const Coord at = mma::ldsm_row_a(threadIdx.x % 32);
#pragma unroll
  for (int kk = 0; kk < KS; kk++) {
    uint32_t af[4];
    mma::ldmatrix_x4<false>(af, a + at.row * lda + 16 * kk + at.col);
    mma_slice(acc, af, bt + 16 * kk, ldb);
  }
}

// acc (16 x 8 NT) += P B: P (16 x 16 KS) still in C fragments (p[2 KS]), rounded to bf16 as it
// becomes the A operand (c_to_a); B's 16 KS rows of 8 NT in shared memory (row stride ld), read
// untransposed with ldmatrix.trans, two n-tiles per instruction.
template <int KS, int NT>
__device__ __forceinline__ void mma_pb(float (&acc)[NT][4], const float (&p)[2 * KS][4],
                                       const bf16* b, int ld) {
  const Coord at = mma::ldsm_row_a(threadIdx.x % 32);
#pragma unroll
  for (int kk = 0; kk < KS; kk++) {
    uint32_t a[4];
    mma::c_to_a(p, kk, a);
#pragma unroll
    for (int t = 0; t < NT; t += 2) {
      uint32_t bf[4];
      mma::ldmatrix_x4<true>(bf, b + (16 * kk + at.row) * ld + 8 * t + at.col);
      mma::mma_16x8x16(acc[t], a, bf);
      mma::mma_16x8x16(acc[t + 1], a, bf + 2);
    }
  }
}

// The query tile of a forward or dQ block (grid: H, B, query tiles): (b, h), rows [i0, i0 + m).
// Tiles count from the last: blocks start in grid order, so under a causal mask every head's
// longest tiles start first and the short ones fill the tail.
struct QueryBlock {
  int64_t b, h, i0, m;
};
__device__ inline QueryBlock query_block(const Problem<bf16>& p) {
  const int64_t i0 = int64_t(gridDim.z - 1 - blockIdx.z) * kRows;
  return {blockIdx.y, blockIdx.x, i0, min(int64_t(kRows), p.S - i0)};
}

// The spans of a warp's 16 query rows within the sequence (rows [0, m) of the block's tile): which
// key tiles they meet at all, and which they see whole, needing no mask.
struct WarpRows {
  bool live;  // some of the rows are in the sequence
  KeySpan first, last;

  __device__ bool meets(int64_t j0) const {
    return live && MaskView::spans_meet(first, last, j0, kKeys);
  }
  __device__ bool inside(int64_t j0) const { return MaskView::spans_cover(first, last, j0, kKeys); }
};
__device__ inline WarpRows warp_rows(const tiles::QueryRows<kRows>& rows, int64_t m) {
  const int r0 = 16 * (threadIdx.x / 32);
  return {r0 < m, rows.span[r0], rows.span[min(r0 + 15, int(m) - 1)]};
}

// The key tiles [j_first, j_end) of kv head kvh in two shared-memory stages (4 tiles of kKeys
// rows at `smem`: stage s has K at 2 s, V at 2 s + 1). start() issues the first tile's copy; run()
// then calls body(j0, k_s, v_s) for every tile in order, the next tile's copy in flight meanwhile.
// Every thread of the block calls both (run holds barriers). Copy groups a thread committed before
// start() have landed by the first body.
template <int D>
struct KvStages {
  static constexpr int kTile = kKeys * (D + kPad);
  const Problem<bf16>& p;
  bf16* smem;
  int64_t b, kvh, j_first, j_end;

  __device__ void load(int stage, int64_t j0) const {
    const int64_t n = min(int64_t(kKeys), p.S - j0);
    const int64_t row = p.kv_row(b, j0, kvh, D);
    load_tile_async<kKeys, D>(smem + 2 * stage * kTile, p.k + row, p.Hkv * D, n);
    load_tile_async<kKeys, D>(smem + (2 * stage + 1) * kTile, p.v + row, p.Hkv * D, n);
    cp_async_commit();
  }
  // The key tiles the rows of a query block meet, of its kv head, in the 4 tiles at smem.
  __device__ static KvStages band(const Problem<bf16>& p, const tiles::QueryRows<kRows>& rows,
                                  const QueryBlock& blk, bf16* smem) {
    return {p, smem, blk.b, blk.h / p.heads_per_kv, tiles::first_key_tile(rows),
            rows.span[blk.m - 1].hi};
  }
  __device__ void start() const {
    if (j_first < j_end) load(0, j_first);
    else cp_async_commit();  // an empty group: the waits count the same either way
  }
  template <class Body>
  __device__ void run(Body&& body) const {
    int stage = 0;
    for (int64_t j0 = j_first; j0 < j_end; j0 += kKeys, stage ^= 1) {
      // The other stage was released by the barrier that ended the previous tile.
      if (j0 + kKeys < j_end) load(stage ^ 1, j0 + kKeys);
      else cp_async_commit();
      cp_async_wait<1>();  // this tile's K and V, of this thread's copies...
      __syncthreads();     // ...and of every thread's
      body(j0, smem + 2 * stage * kTile, smem + (2 * stage + 1) * kTile);
      __syncthreads();  // every warp is done with this stage before it is refilled
    }
  }
};

}  // namespace v3
}  // namespace llm
