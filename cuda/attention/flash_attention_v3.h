// defines: flash_v3_requested, flash_v3_forward, flash_v3_backward: the v3 tensor-core attention
// kernels (cuda/attention/flash_attention_v3.cu, flash_attention_v3_backward.cu), which llm_bench
// selects (--impl flash_v3) and training does not use yet: they are compiled and their layouts
// checked on the CPU, but they have not run on a GPU.
#pragma once
#include "cuda/attention/cuda_attention_tiles.cuh"

namespace llm {

// LLM_ATTENTION_V3=1 in the environment: a call that the v2 tensor-core kernels would take
// (mma_attention_takes) runs on v3 instead.
bool flash_v3_requested();

// q, out (B, S, H, D); k, v (B, S, Hkv, D); lse f32 (B, H, S): v2's layouts, D 64 or 128, bf16.
void flash_v3_forward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                      const MaskView& mask, Tensor& out, Tensor& lse);

// v2's backward contract: delta f32 (B, H, S) = rowsum(dout * out), computed by the caller; lse
// from either forward (the same layout and units).
void flash_v3_backward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& dout, const Tensor& lse, const Tensor& delta,
                       const MaskView& mask, Tensor& dq, Tensor& dk, Tensor& dv);

}  // namespace llm
