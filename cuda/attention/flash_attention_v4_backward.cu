// defines: flash_v4_backward: attention backward v4, v3's two-kernel deterministic backward
// (flash_attention_v3_backward.cu: dK/dV per 128-key tile, then dQ per 128-query tile, each
// output summed by one block in a fixed order, no atomics) rebuilt on v4's Hopper machinery
// (flash_attention_v4.cuh): wgmma with both score products' operands read from shared memory and
// P^T / dS^T (dS in the dQ kernel) fed from registers as the A operand of the products that
// accumulate dV, dK (dQ); the streamed tiles arrive by TMA into two stages kept by mbarriers; a
// producer warpgroup and two consumer warpgroups of 64 rows each. The score tiles are 64 wide so
// that both score accumulators and both gradient accumulators fit the consumers' registers at
// head_dim 128. Not FlashAttention-3's backward: no overlap of the softmax-side arithmetic with
// the next tile's products, and dQ by a second kernel rather than by atomics.
// Passed validation on an H200 (bench/results/2026-11-29-gpu-bringup.md).
//
// flash_v5_backward: FlashAttention-3's five products instead of seven. The dK/dV kernel also
// writes dS^T (bf16) to shared memory and, after a barrier of both consumers, warpgroup c computes
// dQ's head-dim columns 64 c .. 64 c + 63 of the query tile, dS (64 queries x the block's 128
// keys, read MN-major) times K's matching box, and adds them into an f32 buffer with atomics;
// one pass then scales and rounds it to bf16. No second kernel recomputes S and dP, but the order
// of the atomic additions varies run to run: not deterministic. Layout-checked on the CPU
// (test_wgmma_layout); on an H200 (bench/results/2026-11-30-gpu-run.md) it passed within the
// criterion but ran slower than v4's two kernels, so it runs only when forced (flash_variants.cu).
//
// flash_v6_backward: v4's two kernels with the dK/dV kernel's GQA groups split over more blocks
// where its grid is short of two blocks per SM (v4::dkdv_head_splits: llama3-1b at seq 2048 runs
// 128 blocks of very unequal causal work on 132 SMs). Each split writes f32 partial sums that one
// pass adds in split order: deterministic, though not v4's bits (v4 sums the group's heads in one
// accumulator). At head_dim 64 both kernels stream 128-row tiles (half the tiles and waits, score
// products of m64n128), which the registers hold there. ptxas (sm_90a): no spills in any v4 or
// v6 kernel.
#include "cuda/attention/flash_attention_v3.cuh"
#include "cuda/attention/flash_attention_v4.cuh"
#include "cuda/attention/flash_attention_v4.h"
#include "cuda/vec.cuh"

namespace llm {

namespace {

using namespace tiles;
using namespace v4;

// The streamed tiles (query rows in the dK/dV kernel, keys in the dQ kernel) are T rows: v4 and v5
// stream 64 (so that both score and both gradient accumulators fit the consumers' registers at
// head_dim 128); v6 streams 128 at head_dim 64, where they still fit, for half the tiles, each of
// m64n128 score products. v5's dS^T tiles take 64 queries.
constexpr int kNarrow = 64;
constexpr int kStages = 2;
static_assert(kConsumers == 2, "the atomic-dQ kernel's liveness test names both warpgroups");

// Shared memory of both kernels, from a 1024-aligned base: the block's two 128-row tiles (K and V,
// or Q and dO), then kStages stages of two T-row tiles (Q and dO, or K and V), then (the
// atomic-dQ kernel's) two dS^T tiles of 128 keys x 64 queries, used by query tiles in turn.
template <int D, int T, bool kAtomicDq = false>
struct Layout {
  static constexpr uint32_t kBig = kRows * D * 2, kSmall = T * D * 2, kDsT = kRows * kNarrow * 2;
  static constexpr uint32_t kStage0 = 2 * kBig, kDsT0 = kStage0 + kStages * 2 * kSmall;
  static constexpr uint32_t kEnd = kDsT0 + (kAtomicDq ? 2 * kDsT : 0);
  __host__ __device__ static constexpr uint32_t first(int s) {
    return kStage0 + s * 2 * kSmall;
  }  // Q or K
  __host__ __device__ static constexpr uint32_t second(int s) {
    return first(s) + kSmall;
  }  // dO or V
  __host__ __device__ static constexpr uint32_t ds_t(int t) { return kDsT0 + t % 2 * kDsT; }
};
template <int D, int T, bool kAtomicDq = false>
constexpr size_t smem_bytes() {
  return Layout<D, T, kAtomicDq>::kEnd + kSmemSlack;
}

struct Barriers {
  uint64_t block_full, full[kStages], empty[kStages];
};

// The maps a kernel reads: the block's tiles (128-row boxes) and the streamed ones (64-row boxes).
struct Maps {
  CUtensorMap big0, big1, small0, small1;
};

#ifdef LLM_SM90A
__device__ void init_barriers(Barriers& bar, uint32_t full_arrivals) {
  if (threadIdx.x != 0) return;
  ptx::mbar_init(&bar.block_full, 2);  // two load_tile arrivals
  for (int s = 0; s < kStages; s++) {
    ptx::mbar_init(&bar.full[s], full_arrivals);
    ptx::mbar_init(&bar.empty[s], 128 * kConsumers);  // every consumer thread
  }
  ptx::fence_barrier_init();
}

// The query tiles the dK/dV kernel's keys [j0, j0 + n) meet, over the query heads [h_begin,
// h_end) of the block's GQA group (all of them, or a split's), in a fixed order: producer and
// consumers walk the same sequence. Tiles of T rows.
template <int T>
struct QueryTiles {
  const Problem<bf16>& p;
  int64_t b, j0, n, h_begin, h_end;
  struct Tile {
    int64_t h, i0;
  };
  __device__ bool meets(Tile t) const {
    return p.mask.tiles_meet(b, t.h, t.i0, min(int64_t(T), p.S - t.i0), j0, n);
  }
  __device__ Tile next(Tile t) const {
    do {
      t.i0 += T;
      if (t.i0 >= p.S) t.i0 = 0, t.h++;
    } while (t.h < h_end && !meets(t));
    return t;
  }
  __device__ Tile first() const {
    const Tile t{h_begin, 0};
    return meets(t) ? t : next(t);
  }
};

// The atomic-dQ kernel's part of a query tile. store_ds_t: this warpgroup's dS^T (keys from
// r0's warp rows x 64 queries, C fragments) as bf16 into the dS^T tile at ds_t, 128-byte swizzled
// as TMA would have written it, so that wgmma reads it back as an MN-major A (dS: m = query,
// k = key).
__device__ void store_ds_t(unsigned char* ds_t, int r0, const float (&dst)[kNarrow / 8][4]) {
#pragma unroll
  for (int c = 0; c < kNarrow / 8; c++)
#pragma unroll
    for (int x = 0; x < 2; x++)
      *reinterpret_cast<uint32_t*>(ds_t + wgmma::tile_offset(kRows, r0 + c_row(2 * x),
                                                             c_col(c, 2 * x))) =
          mma::pack_bf16(dst[c][2 * x], dst[c][2 * x + 1]);
}

// dQ's columns 64 c .. of the query tile (rows i0 .., head h) += dS K over the block's keys,
// added into the f32 dq_sum with atomics; consumer c (< D / 64) does it. Every consumer has stored
// its dS^T (zeros where its keys missed the tile) and passed the barrier. All k-steps run: a
// condition per k-step makes ptxas serialise every wgmma of the kernel.
template <int D>
__device__ void add_dq_tile(const Problem<bf16>& p, uint32_t ds_t, uint32_t k_tile, int64_t b,
                            int64_t h, int64_t i0, float* dq_sum) {
  const int c = threadIdx.x / 128 - 1;
  if (c >= D / wgmma::kBoxCols) return;
  const uint32_t k_box = k_tile + c * kRows * wgmma::kRowBytes;
  float acc[8][4];
  ptx::wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < kRows / 16; kk++)  // 16 keys a step
    ptx::wgmma_ss_n64<1, 1>(acc, mnmajor_desc<kRows>(ds_t, kk), mnmajor_desc<kRows>(k_box, kk),
                            kk > 0);
  ptx::wgmma_commit();
  ptx::wgmma_wait<0>();
  ptx::fence_regs(acc);
  const int r0 = 16 * (threadIdx.x / 32 % 4);
#pragma unroll
  for (int x = 0; x < 2; x++) {
    const int64_t i = i0 + r0 + c_row(2 * x);
    if (i >= p.S) continue;
    float* row = dq_sum + p.q_row(b, i, h, D) + wgmma::kBoxCols * c;
#pragma unroll
    for (int t = 0; t < 8; t++)
      atomicAdd(reinterpret_cast<float2*>(row + c_col(t, 2 * x)),
                make_float2(acc[t][2 * x], acc[t][2 * x + 1]));
  }
}
#endif  // LLM_SM90A

// dK and dV of one 128-key tile of kv head kvh over the query heads of split `split` of its GQA
// group (grid: Hkv x splits, B, key tiles); consumer warpgroup c owns keys 64 c .. 64 c + 63. Per
// query tile (64 rows): S^T = K Q^T and dP^T = V dO^T (keys x queries), P^T = exp2(S^T scale
// log2 e - lse) masked, dS^T = P^T (dP^T - delta), then dV += P^T dO and dK += dS^T Q with P^T,
// dS^T as register A and dO, Q MN-major. kAtomicDq: then dQ of the query tile, add_dq_tile's way.
// One split: dK, dV in bf16; more: the split's unscaled f32 sums into its part of dkv_part (dK's
// B x S x Hkv x D, then dV's), which sum_splits_kernel adds up. Query tiles of T rows.
template <int D, int T, bool kAtomicDq, bool kPingPong = false>
__global__ void __launch_bounds__(kBlockThreads, 1)
    dkdv_v4_kernel(const __grid_constant__ Maps maps, Problem<bf16> p, const float* lse,
                   const float* delta, int splits, bf16* dk, bf16* dv, float* dkv_part,
                   float* dq_sum) {
#ifdef LLM_SM90A
  static_assert(!kAtomicDq || T == kNarrow, "v5's dS^T tiles hold 64 queries");
  static_assert(!(kAtomicDq && kPingPong), "the atomic dQ's barrier is the ping-pong's barrier 1");
  using L = Layout<D, T, kAtomicDq>;
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = align_smem(smem_raw);
  __shared__ QueryRows<T> rows[kStages];
  __shared__ Barriers bar;
  const int split = int(blockIdx.x) % splits;
  const int64_t b = blockIdx.y, kvh = blockIdx.x / splits, j0 = int64_t(blockIdx.z) * kRows;
  const int64_t n = min(int64_t(kRows), p.S - j0);
  // Every producer thread arrives once per stage fill (after its rows), the copying one twice.
  init_barriers(bar, 128 + 1);
  __syncthreads();
  const HeadRange heads = split_heads(kvh, split, splits, p.heads_per_kv);
  const QueryTiles<T> tiles{p, b, j0, n, heads.begin, heads.end};
  if (threadIdx.x < 128) {  // the producer warpgroup
    ptx::setmaxnreg_dec<kProducerRegs>();
    if (threadIdx.x == 0) {
      load_tile<kRows, D>(smem, &maps.big0, &bar.block_full, kvh, j0, b);
      load_tile<kRows, D>(smem + L::kBig, &maps.big1, &bar.block_full, kvh, j0, b);
    }
    int t = 0;
    for (auto tile = tiles.first(); tile.h < tiles.h_end; tile = tiles.next(tile), t++) {
      const int s = t % kStages;
      ptx::mbar_wait(&bar.empty[s], ((t / kStages) & 1) ^ 1);
      load_query_rows(p, rows[s], lse, delta, b, tile.h, tile.i0, min(int64_t(T), p.S - tile.i0));
      if (threadIdx.x == 0) {
        load_tile<T, D>(smem + L::first(s), &maps.small0, &bar.full[s], tile.h, tile.i0, b);
        load_tile<T, D>(smem + L::second(s), &maps.small1, &bar.full[s], tile.h, tile.i0, b);
      } else {
        ptx::mbar_arrive(&bar.full[s]);
      }
    }
    return;
  }
  ptx::setmaxnreg_inc<kConsumerRegs>();
  const int wg_row = 64 * (threadIdx.x / 128 - 1), r0 = wg_row + 16 * (threadIdx.x / 32 % 4);
  const int64_t wg_key = j0 + wg_row;  // the warpgroup's keys: [wg_key, wg_key + 64)
  const uint32_t base = ptx::smem_addr(smem);
  const float scale_log2 = p.scale * kLog2e;
  float dk_acc[D / 8][4] = {}, dv_acc[D / 8][4] = {};
  const PingPong<kPingPong> turns;  // two turns a query tile, live or not
  turns.start();
  ptx::mbar_wait(&bar.block_full, 0);
  int t = 0;
  for (auto tile = tiles.first(); tile.h < tiles.h_end; tile = tiles.next(tile), t++) {
    const int s = t % kStages;
    ptx::mbar_wait(&bar.full[s], (t / kStages) & 1);
    const QueryRows<T>& r = rows[s];
    const KeySpan first = r.span[0], last = r.span[min(int64_t(T), p.S - tile.i0) - 1];
    // Whether this warpgroup's keys meet the tile, and whether any consumer's do (block-uniform).
    auto meets = [&](int64_t key) {
      return key < p.S && MaskView::spans_meet(first, last, key, 64);
    };
    const bool live = meets(wg_key), any_live = meets(j0) || meets(j0 + 64);
    const uint32_t q_s = base + L::first(s), do_s = base + L::second(s);
    float pt[T / 8][4], dst[T / 8][4];  // P^T, then dS^T: 64 keys x T queries
    uint32_t pa[T / 16][4], dsa[T / 16][4];  // the same as A fragments
    turns.begin();
    if (live) {
      ptx::wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < D / 16; kk++) {
        ptx::wgmma_ss(pt, kmajor_desc<kRows>(base, wg_row, kk), kmajor_desc<T>(q_s, 0, kk), kk);
        ptx::wgmma_ss(dst, kmajor_desc<kRows>(base + L::kBig, wg_row, kk),
                      kmajor_desc<T>(do_s, 0, kk), kk);
      }
      ptx::wgmma_commit();
      turns.end();
      ptx::wgmma_wait<0>();
      ptx::fence_regs(pt);
      ptx::fence_regs(dst);
      // Past the sequence a query's lse is +inf (P = 0) and a key is outside every span.
      const bool boundary = needs_mask<64>(first, last, wg_key);
#pragma unroll
      for (int c = 0; c < T / 8; c++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
          const int q = c_col(c, i);  // the query row in the tile
          float prob = exp2f(fmaf(pt[c][i], scale_log2, -r.lse[q] * kLog2e));
          if (boundary && !r.span[q].contains(j0 + r0 + c_row(i))) prob = 0.0f;
          pt[c][i] = prob;
          dst[c][i] = prob * (dst[c][i] - r.delta[q]);
        }
      if constexpr (kAtomicDq) store_ds_t(smem + L::ds_t(t), r0, dst);
#pragma unroll
      for (int kk = 0; kk < T / 16; kk++)
        mma::c_to_a(pt, kk, pa[kk]), mma::c_to_a(dst, kk, dsa[kk]);
      if constexpr (kPingPong) {  // the element-wise work stays before the next turn's wait
        ptx::fence_regs(pa);
        ptx::fence_regs(dsa);
      }
    } else {
      turns.end();
    }
    turns.begin();
    if (live) {
      ptx::wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < T / 16; kk++) {
        ptx::wgmma_rs(dv_acc, pa[kk], mnmajor_desc<T>(do_s, kk));  // dV += P^T dO
        ptx::wgmma_rs(dk_acc, dsa[kk], mnmajor_desc<T>(q_s, kk));  // dK += dS^T Q
      }
      ptx::wgmma_commit();
      turns.end();
      ptx::wgmma_wait<0>();
      ptx::fence_regs(dv_acc);
      ptx::fence_regs(dk_acc);
      ptx::fence_regs(pa);
      ptx::fence_regs(dsa);
    } else {
      turns.end();
      if (kAtomicDq && any_live) {
        const float zero[kNarrow / 8][4] = {};
        store_ds_t(smem + L::ds_t(t), r0, zero);
      }
    }
    ptx::mbar_arrive(&bar.empty[s]);
    if constexpr (kAtomicDq) {
      // The other warpgroup's dS^T is in before dQ reads it; and with two dS^T tiles, a
      // warpgroup writes tile t % 2 again only after both passed this barrier at t + 1, so
      // after both finished reading it at t. Hence a barrier at every tile, live or not.
      ptx::fence_proxy_async();
      ptx::named_barrier_sync<128 * kConsumers>(1);
      if (any_live) add_dq_tile<D>(p, base + L::ds_t(t), base, b, tile.h, tile.i0, dq_sum);
    }
  }
  turns.finish();
  if (splits == 1) {
    store_rows_from<D>(r0, dk_acc, p.scale, n,
                       [&](int c) { return dk + p.kv_row(b, j0 + c, kvh, D); });
    store_rows_from<D>(r0, dv_acc, 1.0f, n,
                       [&](int c) { return dv + p.kv_row(b, j0 + c, kvh, D); });
  } else {
    const int64_t n_kv = int64_t(gridDim.y) * p.S * p.Hkv * D;
    float *dk_part = dkv_part + 2 * split * n_kv, *dv_part = dk_part + n_kv;
    store_rows_from<D>(r0, dk_acc, 1.0f, n,
                       [&](int c) { return dk_part + p.kv_row(b, j0 + c, kvh, D); });
    store_rows_from<D>(r0, dv_acc, 1.0f, n,
                       [&](int c) { return dv_part + p.kv_row(b, j0 + c, kvh, D); });
  }
#endif
}

// dQ of one 128-query tile of (b, h) (grid: H, B, query tiles, the last first); consumer
// warpgroup c owns rows 64 c ... Per T-key tile of the band: S = Q K^T and dP = dO V^T,
// dS = P (dP - delta), dQ += dS K with dS as register A and K MN-major.
template <int D, int T, bool kPingPong = false>
__global__ void __launch_bounds__(kBlockThreads, 1)
    dq_v4_kernel(const __grid_constant__ Maps maps, Problem<bf16> p, const float* lse,
                 const float* delta, bf16* dq) {
#ifdef LLM_SM90A
  using L = Layout<D, T>;
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = align_smem(smem_raw);
  __shared__ QueryRows<kRows> rows;
  __shared__ Barriers bar;
  const v3::QueryBlock blk = v3::query_block(p);
  load_query_rows(p, rows, lse, delta, blk.b, blk.h, blk.i0, blk.m);
  init_barriers(bar, 2);  // the copying thread's two load_tile arrivals
  __syncthreads();
  const Band band = key_band<T>(rows.span[0], rows.span[blk.m - 1]);
  if (threadIdx.x < 128) {  // the producer warpgroup
    ptx::setmaxnreg_dec<kProducerRegs>();
    if (threadIdx.x != 0) return;
    const int64_t kvh = blk.h / p.heads_per_kv;
    load_tile<kRows, D>(smem, &maps.big0, &bar.block_full, blk.h, blk.i0, blk.b);
    load_tile<kRows, D>(smem + L::kBig, &maps.big1, &bar.block_full, blk.h, blk.i0, blk.b);
    for (int t = 0; t < band.n; t++) {
      const int s = t % kStages;
      const int64_t j0 = band.j_first + int64_t(t) * T;
      ptx::mbar_wait(&bar.empty[s], ((t / kStages) & 1) ^ 1);
      load_tile<T, D>(smem + L::first(s), &maps.small0, &bar.full[s], kvh, j0, blk.b);
      load_tile<T, D>(smem + L::second(s), &maps.small1, &bar.full[s], kvh, j0, blk.b);
    }
    return;
  }
  ptx::setmaxnreg_inc<kConsumerRegs>();
  const int wg_row = 64 * (threadIdx.x / 128 - 1), r0 = wg_row + 16 * (threadIdx.x / 32 % 4);
  KeySpan span[2];  // the lane's two rows (C elements 0-1, 2-3): spans, lse in log2 units, delta
  float lse2[2], dlt[2];
#pragma unroll
  for (int x = 0; x < 2; x++) {
    const int r = r0 + c_row(2 * x);
    span[x] = rows.span[r], lse2[x] = rows.lse[r] * kLog2e, dlt[x] = rows.delta[r];
  }
  const KeySpan first = rows.span[wg_row], last = rows.span[warpgroup_last_row(wg_row, blk.m)];
  const uint32_t base = ptx::smem_addr(smem);
  const float scale_log2 = p.scale * kLog2e;
  float dq_acc[D / 8][4] = {};
  const PingPong<kPingPong> turns;  // two turns a key tile, live or not
  turns.start();
  ptx::mbar_wait(&bar.block_full, 0);
  for (int t = 0; t < band.n; t++) {
    const int s = t % kStages;
    const int64_t j0 = band.j_first + int64_t(t) * T;
    ptx::mbar_wait(&bar.full[s], (t / kStages) & 1);
    const bool live = MaskView::spans_meet(first, last, j0, T);  // warpgroup-uniform
    const uint32_t k_s = base + L::first(s), v_s = base + L::second(s);
    float sc[T / 8][4], ds[T / 8][4];  // P, then dS: 64 queries x T keys
    uint32_t dsa[T / 16][4];           // dS as A fragments
    turns.begin();
    if (live) {
      ptx::wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < D / 16; kk++) {
        ptx::wgmma_ss(sc, kmajor_desc<kRows>(base, wg_row, kk), kmajor_desc<T>(k_s, 0, kk), kk);
        ptx::wgmma_ss(ds, kmajor_desc<kRows>(base + L::kBig, wg_row, kk),
                      kmajor_desc<T>(v_s, 0, kk), kk);
      }
      ptx::wgmma_commit();
      turns.end();
      ptx::wgmma_wait<0>();
      ptx::fence_regs(sc);
      ptx::fence_regs(ds);
      const bool boundary = needs_mask<T>(first, last, j0);
#pragma unroll
      for (int c = 0; c < T / 8; c++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
          float prob = exp2f(fmaf(sc[c][i], scale_log2, -lse2[i / 2]));
          if (boundary && !span[i / 2].contains(j0 + c_col(c, i))) prob = 0.0f;
          ds[c][i] = prob * (ds[c][i] - dlt[i / 2]);
        }
#pragma unroll
      for (int kk = 0; kk < T / 16; kk++) mma::c_to_a(ds, kk, dsa[kk]);
      if constexpr (kPingPong) ptx::fence_regs(dsa);  // the element-wise work before the turn's wait
    } else {
      turns.end();
    }
    turns.begin();
    if (live) {
      ptx::wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < T / 16; kk++)
        ptx::wgmma_rs(dq_acc, dsa[kk], mnmajor_desc<T>(k_s, kk));  // dQ += dS K
      ptx::wgmma_commit();
      turns.end();
      ptx::wgmma_wait<0>();
      ptx::fence_regs(dq_acc);
      ptx::fence_regs(dsa);
    } else {
      turns.end();
    }
    ptx::mbar_arrive(&bar.empty[s]);
  }
  turns.finish();
  store_rows_from<D>(r0, dq_acc, p.scale, blk.m,
                     [&](int r) { return dq + p.q_row(blk.b, blk.i0 + r, blk.h, D); });
#endif
}

// dq = bf16(scale x dq_sum), n elements: the atomic-dQ backward's last pass.
__global__ void scale_to_bf16_kernel(const float* dq_sum, float scale, bf16* dq, int64_t n) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x)
    dq[e] = __float2bfloat16(scale * dq_sum[e]);
}

// dk = bf16(dk_scale x the splits' dK partials added in split order), dv alike with scale 1: the
// split dK/dV kernel's last pass, in groups of 4 of the 2 n_kv outputs (n_kv: a multiple of D).
__global__ void sum_splits_kernel(const float* dkv_part, int splits, int64_t n_kv, float dk_scale,
                                  bf16* dk, bf16* dv) {
  GRID_STRIDE_LOOP(group, 2 * n_kv / 4) {
    Vec4<float> sum = load4(dkv_part, group);
    for (int s = 1; s < splits; s++) {
      const Vec4<float> x = load4(dkv_part + 2 * s * n_kv, group);
#pragma unroll
      for (int e = 0; e < 4; e++) sum.v[e] += x.v[e];
    }
    const bool is_dv = 4 * group >= n_kv;
    const float mul = is_dv ? 1.0f : dk_scale;
    Vec4<bf16> out;
#pragma unroll
    for (int e = 0; e < 4; e++) out.v[e] = __float2bfloat16(mul * sum.v[e]);
    store4(is_dv ? dv : dk, is_dv ? group - n_kv / 4 : group, out);
  }
}

// The dK/dV kernel (with dQ by atomics into dq_sum when kAtomicDq) of head_dim D and T-row query
// tiles, its GQA groups in `splits` blocks per key tile (then summed by sum_splits_kernel).
template <int D, int T, bool kAtomicDq, bool kPingPong = false>
void launch_dkdv(cudaStream_t stream, const Problem<bf16>& p, const Tensor& q, const Tensor& k,
                 const Tensor& v, const Tensor& dout, const Tensor& lse, const Tensor& delta,
                 int splits, Tensor& dk, Tensor& dv, float* dq_sum) {
  const Maps maps{head_map(k, kRows), head_map(v, kRows), head_map(q, T), head_map(dout, T)};
  const dim3 grid(static_cast<unsigned>(p.Hkv * splits), static_cast<unsigned>(q.size(0)),
                  static_cast<unsigned>((p.S + kRows - 1) / kRows));
  const int64_t n_kv = k.numel();
  Tensor dkv_part;
  if (splits > 1) dkv_part = Tensor::empty({2 * splits * n_kv}, DType::f32, k.device());
  constexpr size_t smem = smem_bytes<D, T, kAtomicDq>();
  allow_smem(dkdv_v4_kernel<D, T, kAtomicDq, kPingPong>, smem);
  dkdv_v4_kernel<D, T, kAtomicDq, kPingPong><<<grid, kBlockThreads, smem, stream>>>(
      maps, p, lse.data<float>(), delta.data<float>(), splits, dk.data<bf16>(), dv.data<bf16>(),
      splits > 1 ? dkv_part.data<float>() : nullptr, dq_sum);
  if (splits > 1)
    sum_splits_kernel<<<grid_for(2 * n_kv / 4), kThreads, 0, stream>>>(
        dkv_part.data<float>(), splits, n_kv, p.scale, dk.data<bf16>(), dv.data<bf16>());
}

// The SM count the split is chosen for: an H100 SXM's and an H200's, whatever this device has
// (an H100 PCIe 114, MIG slices fewer), so that the split, and with it the order in which dK and
// dV's partials are summed, depends on the shape alone: the same bits on any GPU, as
// cuda_common.cuh's grid_for promises for its reductions.
constexpr int kSplitSms = 132;

// The deterministic backward at head_dim D with T-row streamed tiles: the dK/dV kernel with
// `splits` blocks per GQA group and key tile, then the dQ kernel; kPingPong: both kernels' consumer
// warpgroups take turns (v7).
template <int D, int T, bool kPingPong>
void two_kernels(cudaStream_t stream, const Problem<bf16>& p, const Tensor& q, const Tensor& k,
                 const Tensor& v, const Tensor& dout, const Tensor& lse, const Tensor& delta,
                 int splits, Tensor& dq, Tensor& dk, Tensor& dv) {
  launch_dkdv<D, T, false, kPingPong>(stream, p, q, k, v, dout, lse, delta, splits, dk, dv,
                                      nullptr);
  const Maps dq_maps{head_map(q, kRows), head_map(dout, kRows), head_map(k, T), head_map(v, T)};
  const unsigned tiles = static_cast<unsigned>((p.S + kRows - 1) / kRows);
  allow_smem(dq_v4_kernel<D, T, kPingPong>, smem_bytes<D, T>());
  dq_v4_kernel<D, T, kPingPong>
      <<<dim3(static_cast<unsigned>(p.H), static_cast<unsigned>(q.size(0)), tiles), kBlockThreads,
         smem_bytes<D, T>(), stream>>>(dq_maps, p, lse.data<float>(), delta.data<float>(),
                                       dq.data<bf16>());
}

// v4's backward; v6's: GQA groups split where the dK/dV grid is short of the SMs, and 128-row
// streamed tiles at head_dim 64; v7's: v6's with the consumers' ping-pong.
enum class TwoKernels { v4, v6, v7 };
void two_kernel_backward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                         const Tensor& dout, const Tensor& lse, const Tensor& delta,
                         const MaskView& mask, TwoKernels which, Tensor& dq, Tensor& dk,
                         Tensor& dv) {
  const Problem<bf16> p = make_problem<bf16>(q, k, v, mask);
  const int64_t blocks = p.Hkv * q.size(0) * ((p.S + kRows - 1) / kRows);
  // The partials' sum stores 4 bf16 at a time: dK and dV are on 16-byte words, as
  // mma_attention_takes requires of every operand before any tensor-core kernel runs.
  const int splits =
      which == TwoKernels::v4 ? 1 : dkdv_head_splits(blocks, p.heads_per_kv, kSplitSms);
  dispatch_head_dim(q.size(3), [&](auto dim) {
    constexpr int D = decltype(dim)::value;
    // 128-row streamed tiles where the registers hold them (head_dim 64), from v6 on.
    constexpr int kWide = D == 64 ? 2 * kNarrow : kNarrow;
    auto run = [&](auto tiles, auto ping_pong) {
      two_kernels<D, decltype(tiles)::value, decltype(ping_pong)::value>(
          stream, p, q, k, v, dout, lse, delta, splits, dq, dk, dv);
    };
    using std::integral_constant;
    if (which == TwoKernels::v4) run(integral_constant<int, kNarrow>{}, std::false_type{});
    else if (which == TwoKernels::v6) run(integral_constant<int, kWide>{}, std::false_type{});
    else run(integral_constant<int, kWide>{}, std::true_type{});
  });
}

// v5's backward: the dK/dV kernel with dQ by atomics into an f32 sum, then its scaled bf16 copy;
// v8's splits its GQA groups over blocks as v6's (dQ's atomics do not care which block adds).
void atomic_dq_backward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& dout, const Tensor& lse, const Tensor& delta, const MaskView& mask,
                        bool split_groups, Tensor& dq, Tensor& dk, Tensor& dv) {
  const Problem<bf16> p = make_problem<bf16>(q, k, v, mask);
  const int64_t blocks = p.Hkv * q.size(0) * ((p.S + kRows - 1) / kRows);
  const int splits = split_groups ? dkdv_head_splits(blocks, p.heads_per_kv, kSplitSms) : 1;
  Tensor dq_sum = Tensor::empty(q.shape(), DType::f32, q.device());
  CUDA_CHECK(cudaMemsetAsync(dq_sum.data_ptr(), 0, dq_sum.nbytes(), stream));
  dispatch_head_dim(q.size(3), [&](auto dim) {
    launch_dkdv<decltype(dim)::value, kNarrow, true>(stream, p, q, k, v, dout, lse, delta, splits, dk,
                                                     dv, dq_sum.data<float>());
  });
  const int64_t n = dq.numel();
  scale_to_bf16_kernel<<<static_cast<unsigned>(std::min<int64_t>((n + 255) / 256, 4096)), 256, 0,
                         stream>>>(dq_sum.data<float>(), p.scale, dq.data<bf16>(), n);
}

}  // namespace

void flash_v4_backward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& dout, const Tensor& lse, const Tensor& delta,
                       const MaskView& mask, Tensor& dq, Tensor& dk, Tensor& dv) {
  two_kernel_backward(stream, q, k, v, dout, lse, delta, mask, TwoKernels::v4, dq, dk, dv);
}

void flash_v6_backward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& dout, const Tensor& lse, const Tensor& delta,
                       const MaskView& mask, Tensor& dq, Tensor& dk, Tensor& dv) {
  two_kernel_backward(stream, q, k, v, dout, lse, delta, mask, TwoKernels::v6, dq, dk, dv);
}

void flash_v7_backward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& dout, const Tensor& lse, const Tensor& delta,
                       const MaskView& mask, Tensor& dq, Tensor& dk, Tensor& dv) {
  two_kernel_backward(stream, q, k, v, dout, lse, delta, mask, TwoKernels::v7, dq, dk, dv);
}

void flash_v5_backward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& dout, const Tensor& lse, const Tensor& delta,
                       const MaskView& mask, Tensor& dq, Tensor& dk, Tensor& dv) {
  atomic_dq_backward(stream, q, k, v, dout, lse, delta, mask, false, dq, dk, dv);
}

void flash_v8_backward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& dout, const Tensor& lse, const Tensor& delta,
                       const MaskView& mask, Tensor& dq, Tensor& dk, Tensor& dv) {
  atomic_dq_backward(stream, q, k, v, dout, lse, delta, mask, true, dq, dk, dv);
}

}  // namespace llm
