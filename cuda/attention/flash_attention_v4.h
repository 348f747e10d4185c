// defines: flash_v4_available, flash_v4_forward, flash_v4_backward, flash_v5_forward,
// flash_v5_backward, flash_v6_backward, flash_v7_forward, flash_v7_backward, flash_v8_backward:
// attention v4, FlashAttention-3's design on Hopper (cuda/attention/flash_attention_v4.cu,
// flash_attention_v4_backward.cu, flash_attention_v5_backward.cu); v5, with its ping-pong forward
// and dQ by atomics; v6, v5's forward and v4's backward with GQA groups split; v7, v5's forward
// made persistent and v6's backward with the ping-pong; v8, v5's backward with v6's splits. v4
// passed validation on an H200 (bench/results/2026-11-29-gpu-bringup.md), v5 on 2026-11-30
// (2026-11-30-gpu-run.md), v6 on 2026-12-04 (2026-12-04-gpu-run.md); v7 and v8 have not run on a
// device yet. Flash attention uses a variant only where it has passed validation on the device at
// hand (flash_variants.h).
#pragma once
#include "cuda/attention/cuda_attention_tiles.cuh"

namespace llm {

// Whether the current device runs v4: compute capability 9.0 and a build with sm_90a code.
bool flash_v4_available();

// v3's contract (flash_attention_v3.h): q, out (B, S, H, D); k, v (B, S, Hkv, D); lse f32
// (B, H, S) in v2's units, so v3's backward consumes it; bf16, head_dim 64 or 128, every key-span
// mask (causal, documents, S2 groups), GQA.
void flash_v4_forward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                      const MaskView& mask, Tensor& out, Tensor& lse);

// v3's backward contract (flash_attention_v3.h): delta f32 (B, H, S) = rowsum(dout * out); lse
// from any of the forwards.
void flash_v4_backward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& dout, const Tensor& lse, const Tensor& delta,
                       const MaskView& mask, Tensor& dq, Tensor& dk, Tensor& dv);

// v5: v4 with the rest of FlashAttention-3's schedule. The forward adds the ping-pong of the two
// consumer warpgroups; the backward sums dQ by f32 atomics in the dK/dV kernel (five products, not
// seven), so its bits vary run to run. Contracts as v4's.
void flash_v5_forward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                      const MaskView& mask, Tensor& out, Tensor& lse);
void flash_v5_backward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& dout, const Tensor& lse, const Tensor& delta,
                       const MaskView& mask, Tensor& dq, Tensor& dk, Tensor& dv);

// v6's backward: v4's, deterministic, with the dK/dV kernel's GQA groups split across blocks (f32
// partial sums added in a fixed order) where the grid is too short to fill the device, and
// 128-row streamed tiles at head_dim 64. Its forward is v5's (deterministic).
void flash_v6_backward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& dout, const Tensor& lse, const Tensor& delta,
                       const MaskView& mask, Tensor& dq, Tensor& dk, Tensor& dv);

// v7. The forward: v5's, persistent (one block an SM walking its query tiles, each tile's start
// and end overlapping its neighbours' work): the same arithmetic per tile as v5's, so v5's bits.
// The backward: v6's with the two consumer warpgroups of both kernels taking turns to issue their
// products (FlashAttention-3's ping-pong), so one's element-wise work overlaps the other's
// products: v6's arithmetic, so v6's bits. Not run on a device yet: forced only.
void flash_v7_forward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                      const MaskView& mask, Tensor& out, Tensor& lse);
void flash_v7_backward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& dout, const Tensor& lse, const Tensor& delta,
                       const MaskView& mask, Tensor& dq, Tensor& dk, Tensor& dv);

// v8's backward: v5's (five products, dQ by f32 atomics: not deterministic) with the dK/dV
// kernel's GQA groups split across blocks as v6's. At llama3-1b's shape v5's backward ran 128
// blocks of very unequal causal work on 132 SMs (0.42 ms against v6's 0.35, whose split and
// 128-row tiles took v4's 0.47 down): whether the split and the five products add up. Its forward
// is v5's. Not run on a device yet: forced only.
void flash_v8_backward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& dout, const Tensor& lse, const Tensor& delta,
                       const MaskView& mask, Tensor& dq, Tensor& dk, Tensor& dv);

}  // namespace llm
