// defines: RowState, mask_tile, softmax_update, rescale_rows, store_rows: the per-row online
// softmax of the tensor-core forward kernels (v3 flash_attention_v3.cu on mma.sync, v4
// flash_attention_v4.cu on wgmma). Both hold a score tile as m16n8 C fragments (a wgmma m64nN
// accumulator is, per warp, exactly N / 8 of them: wgmma_layout.h), so a lane owns two rows and
// the four lanes of its quad share them.
#pragma once
#include "cuda/attention/mma_tiles.cuh"

namespace llm {
namespace tiles {

// -inf on the scores of keys outside the spans of the lane's two rows (C elements 0-1, 2-3): only
// on a boundary tile.
template <int NT>
__device__ __forceinline__ void mask_tile(float (&s)[NT][4], const KeySpan (&span)[2], int64_t j0) {
#pragma unroll
  for (int t = 0; t < NT; t++)
#pragma unroll
    for (int i = 0; i < 4; i++)
      if (!span[i / 2].contains(j0 + c_col(t, i))) s[t][i] = -INFINITY;
}

// The lane's two rows' softmax state: running max of the scores in log2 units (raw score x
// scale x log2 e) and this lane's part of the running sum (its quad's four parts add up to the
// row's at the end, so the loop needs no shuffle for it).
struct RowState {
  float max[2] = {-INFINITY, -INFINITY}, sum[2] = {0.0f, 0.0f};
};

// The online-softmax step for one key tile: s (raw scores, -inf where masked) becomes
// P = exp2(s * scale_log2 - max) against the rows' new running max, the sum is rescaled and
// grown, and rescale[x] says by how much row x's output accumulator must shrink. Split from the
// rescale itself because v4 computes it while the accumulator is still in flight on the tensor
// cores.
template <int NT>
__device__ __forceinline__ void softmax_update(float (&s)[NT][4], RowState& st, float scale_log2,
                                               float (&rescale)[2]) {
#pragma unroll
  for (int x = 0; x < 2; x++) {
    float mx = -INFINITY;
#pragma unroll
    for (int t = 0; t < NT; t++) mx = fmaxf(mx, fmaxf(s[t][2 * x], s[t][2 * x + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));  // the row's other three lanes
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float new_max = fmaxf(st.max[x], mx * scale_log2);
    // A row masked so far keeps max -inf; subtracting 0 instead gives exp2(-inf) = 0, not NaN.
    const float base = new_max == -INFINITY ? 0.0f : new_max;
    rescale[x] = exp2f(st.max[x] - base);
    float sum = 0.0f;
#pragma unroll
    for (int t = 0; t < NT; t++)
#pragma unroll
      for (int e = 2 * x; e < 2 * x + 2; e++) {
        s[t][e] = exp2f(fmaf(s[t][e], scale_log2, -base));
        sum += s[t][e];
      }
    st.sum[x] = st.sum[x] * rescale[x] + sum;
    st.max[x] = new_max;
  }
}

template <int DT>
__device__ __forceinline__ void rescale_rows(float (&o)[DT][4], const float (&rescale)[2]) {
#pragma unroll
  for (int t = 0; t < DT; t++)
#pragma unroll
    for (int e = 0; e < 4; e++) o[t][e] *= rescale[e / 2];
}

// A warp's 16 rows of the output (tile rows r0 .. r0 + 15), normalised, and their lse in v2's
// units (natural log of the scaled scores' sum of exponentials, +inf for a row that saw no key,
// whose output is 0), so v2's and v3's backward read it. Rows from m on are past the sequence
// and not written.
template <int D>
__device__ void store_rows(const Problem<bf16>& p, const float (&o)[D / 8][4], RowState st,
                           bf16* out, float* lse, int64_t b, int64_t h, int64_t i0, int64_t m,
                           int r0) {
#pragma unroll
  for (int x = 0; x < 2; x++) {
    float sum = st.sum[x];  // every lane shuffles before any leaves
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int r = r0 + c_row(2 * x);
    if (r >= m) continue;
    const bool sees_any = sum > 0.0f;
    const float inv = sees_any ? 1.0f / sum : 0.0f;
    bf16* row = out + p.q_row(b, i0 + r, h, D);
#pragma unroll
    for (int t = 0; t < D / 8; t++)
      *reinterpret_cast<uint32_t*>(row + c_col(t, 2 * x)) =
          mma::pack_bf16(o[t][2 * x] * inv, o[t][2 * x + 1] * inv);
    if (mma::thread_in_group(threadIdx.x % 32) == 0)
      lse[(b * p.H + h) * p.S + i0 + r] = sees_any ? (st.max[x] + log2f(sum)) * kLn2 : INFINITY;
  }
}

}  // namespace tiles
}  // namespace llm
