// defines: flash_v3_forward, flash_v3_backward: the v3 tensor-core attention kernels
// (cuda/attention/flash_attention_v3.cu, flash_attention_v3_backward.cu). They passed
// test_gpu_attention on an H200 (every mask, FlashAttention's bf16 criterion, as v2 had) at 2.5x
// v2's speed (README, "Attention kernel variants"); flash_variants.h says when they run.
#pragma once
#include "cuda/attention/cuda_attention_tiles.cuh"

namespace llm {

// q, out (B, S, H, D); k, v (B, S, Hkv, D); lse f32 (B, H, S): v2's layouts, D 64 or 128, bf16.
void flash_v3_forward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                      const MaskView& mask, Tensor& out, Tensor& lse);

// v2's backward contract: delta f32 (B, H, S) = rowsum(dout * out), computed by the caller; lse
// from either forward (the same layout and units).
void flash_v3_backward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& dout, const Tensor& lse, const Tensor& delta,
                       const MaskView& mask, Tensor& dq, Tensor& dk, Tensor& dv);

}  // namespace llm
