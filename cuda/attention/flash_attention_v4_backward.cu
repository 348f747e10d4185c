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
// flash_v6_backward: v4's two kernels with the dK/dV kernel's GQA groups split over more blocks
// where its grid is short of two blocks per SM (v4::dkdv_head_splits: llama3-1b at seq 2048 runs
// 128 blocks of very unequal causal work on 132 SMs). Each split writes f32 partial sums that one
// pass adds in split order: deterministic, though not v4's bits (v4 sums the group's heads in one
// accumulator). At head_dim 64 both kernels stream 128-row tiles (half the tiles and waits, score
// products of m64n128), which the registers hold there. ptxas (sm_90a): no spills in any v4 or
// v6 kernel.
//
// flash_v7_backward: v6's two kernels with the consumer warpgroups taking turns (PingPong in
// flash_attention_v4.cuh): the same arithmetic in each warpgroup, so v6's gradient bits.
#include "cuda/attention/flash_attention_v4.h"
#include "cuda/attention/flash_attention_v4_dkdv.cuh"

namespace llm {

namespace {

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
      issue_score_products<D, T>(sc, ds, base, base + L::kBig, k_s, v_s, wg_row);
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

}  // namespace llm
