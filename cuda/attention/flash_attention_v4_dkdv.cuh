// defines: the attention backward's dK/dV kernel on v4's Hopper machinery (dkdv_v4_kernel,
// launched by launch_dkdv, its GQA splits summed by sum_splits_kernel) and what it shares with the
// dQ kernel: the shared-memory layout, the barriers, the tensor maps. Included by
// flash_attention_v4_backward.cu (v4, v6, v7: dK/dV here, then a dQ kernel) and
// flash_attention_v5_backward.cu (v5, v8: dQ by atomics from this kernel). The kernels are in an
// anonymous namespace: each including file compiles its own instantiations, with no device link.
#pragma once
#include "cuda/attention/flash_attention_v3.cuh"
#include "cuda/attention/flash_attention_v4.cuh"
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
inline __device__ void init_barriers(Barriers& bar, uint32_t full_arrivals) {
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

// Both score products of a streamed tile, issued and committed together: acc0 = A0 B0^T and
// acc1 = A1 B1^T over head_dim, A the block's two 128-row tiles (this warpgroup's 64 rows from
// wg_row), B the stage's two T-row tiles. The dK/dV kernel's S^T and dP^T (keys x queries), the
// dQ kernel's S and dP.
template <int D, int T>
__device__ __forceinline__ void issue_score_products(float (&acc0)[T / 8][4], float (&acc1)[T / 8][4],
                                                     uint32_t a0, uint32_t a1, uint32_t b0, uint32_t b1,
                                                     int wg_row) {
  ptx::wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++) {
    ptx::wgmma_ss(acc0, kmajor_desc<kRows>(a0, wg_row, kk), kmajor_desc<T>(b0, 0, kk), kk);
    ptx::wgmma_ss(acc1, kmajor_desc<kRows>(a1, wg_row, kk), kmajor_desc<T>(b1, 0, kk), kk);
  }
  ptx::wgmma_commit();
}

// The atomic-dQ kernel's part of a query tile. store_ds_t: this warpgroup's dS^T (keys from
// r0's warp rows x 64 queries, C fragments) as bf16 into the dS^T tile at ds_t, 128-byte swizzled
// as TMA would have written it, so that wgmma reads it back as an MN-major A (dS: m = query,
// k = key).
inline __device__ void store_ds_t(unsigned char* ds_t, int r0, const float (&dst)[kNarrow / 8][4]) {
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
      issue_score_products<D, T>(pt, dst, base, base + L::kBig, q_s, do_s, wg_row);
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

}  // namespace

}  // namespace llm
