// defines: flash_v3_forward: attention forward v3, FlashAttention-2's
// mma.sync kernel as FlashAttention-2 itself builds it, for bf16 at head_dim 64 and 128 with
// key-span masks (causal, S2 groups, document ids) and GQA. What it changes against v2
// (cuda_flash_attention_mma.cu), each aimed at what v2's SASS showed:
//   - fragments come from shared memory by ldmatrix.x4 (four 8 x 8 matrices, two mma operands,
//     per instruction) where v2 did two 32-bit loads per mma; V feeds P V through ldmatrix.trans,
//     so no tile is ever transposed with 2-byte stores;
//   - K and V tiles arrive by 16-byte cp.async into two stages: tile j + 1 is in flight while
//     tile j is multiplied;
//   - a block is 128 query rows (8 warps of 16), so each K/V tile loaded serves twice v2's rows;
//   - exp2 with scale * log2(e) folded into one FFMA per score;
//   - masks only on boundary tiles (MaskView::spans_cover), and a warp skips a key tile its own
//     16 rows do not meet (the causal diagonal's upper half);
//   - the heaviest causal query tiles start first.
// Compiled for sm_90a and sm_80 and layout-checked on the CPU (test_mma_layout, test_attention's
// span checks); on an H200 it passed test_gpu_attention as v2 had, 250 TFLOP/s forward at seq
// 4096, head_dim 128, causal (v2: 74); flash attention runs it where it is the fastest variant
// that passed validation (flash_variants.h).
#include "cuda/attention/flash_attention_v3.cuh"
#include "cuda/attention/flash_attention_v3.h"
#include "cuda/attention/online_softmax.cuh"

namespace llm {

namespace {

using namespace tiles;
using namespace mma;
using namespace v3;

template <int D>
constexpr size_t smem_bytes() {  // the Q tile, then two stages of K and V
  return size_t(kRows + 4 * kKeys) * (D + kPad) * sizeof(bf16);
}

// Forward of one 128-row query tile of (b, h) (grid: H, B, query tiles; the last query tile
// first, see query_block). Per key tile of the band, once its K and V have landed: S = Q K^T,
// the mask if a boundary tile, online softmax, O += P V.
template <int D>
__global__ void __launch_bounds__(kBlockThreads) forward_v3_kernel(Problem<bf16> p, bf16* out,
                                                                   float* lse) {
  constexpr int LD = D + kPad;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* q_s = reinterpret_cast<bf16*>(smem);  // (128, LD), then KvStages' 4 tiles
  __shared__ QueryRows<kRows> rows;
  const int warp = threadIdx.x / 32;
  const QueryBlock blk = query_block(p);
  const int64_t b = blk.b, h = blk.h, i0 = blk.i0, m = blk.m;
  load_tile_async<kRows, D>(q_s, p.q + p.q_row(b, i0, h, D), p.H * D, m);
  cp_async_commit();
  load_query_rows(p, rows, nullptr, nullptr, b, h, i0, m);
  __syncthreads();
  const KvStages<D> kv = KvStages<D>::band(p, rows, blk, q_s + kRows * LD);
  kv.start();
  cp_async_wait<1>();  // the Q tile has landed (the first K/V tile may still be in flight)
  __syncthreads();
  uint32_t qf[D / 16][4];
  const Coord at = ldsm_row_a(threadIdx.x % 32);
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++)
    ldmatrix_x4<false>(qf[kk], q_s + (16 * warp + at.row) * LD + 16 * kk + at.col);
  // The spans of the lane's two rows, and the band of the warp's rows.
  const KeySpan span[2] = {rows.span[16 * warp + c_row(0)], rows.span[16 * warp + c_row(2)]};
  const WarpRows band = warp_rows(rows, m);
  float o[D / 8][4] = {};
  RowState st;
  const float scale_log2 = p.scale * kLog2e;
  kv.run([&](int64_t j0, const bf16* k_s, const bf16* v_s) {
    if (!band.meets(j0)) return;  // warp-uniform
    float s[kKeys / 8][4] = {};
    mma_abt(s, qf, k_s, LD);
    if (!band.inside(j0)) mask_tile(s, span, j0);
    float rescale[2];
    softmax_update(s, st, scale_log2, rescale);
    rescale_rows(o, rescale);
    mma_pb<kKeys / 16>(o, s, v_s, LD);
  });
  store_rows<D>(p, o, st, out, lse, b, h, i0, m, 16 * warp);
}

}  // namespace

void flash_v3_forward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                      const MaskView& mask, Tensor& out, Tensor& lse) {
  const Problem<bf16> p = make_problem<bf16>(q, k, v, mask);
  // Query tiles on the grid's slowest axis, the longest first (query_block).
  const dim3 grid(static_cast<unsigned>(p.H), static_cast<unsigned>(q.size(0)),
                  static_cast<unsigned>((p.S + kRows - 1) / kRows));
  dispatch_head_dim(q.size(3), [&](auto dim) {
    constexpr int D = decltype(dim)::value;
    allow_smem(forward_v3_kernel<D>, smem_bytes<D>());
    forward_v3_kernel<D><<<grid, kBlockThreads, smem_bytes<D>(), stream>>>(p, out.data<bf16>(),
                                                                      lse.data<float>());
  });
}

}  // namespace llm
