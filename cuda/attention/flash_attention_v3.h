// defines: flash_v3_requested, flash_v3_forward: the v3 tensor-core attention forward
// (cuda/attention/flash_attention_v3.cu), which llm_bench selects (--impl flash_v3) and training
// does not use yet: it is compiled and its layouts checked on the CPU, but it has not run on a GPU.
#pragma once
#include "cuda/attention/cuda_attention_tiles.cuh"

namespace llm {

// LLM_ATTENTION_V3=1 in the environment: a forward that the v2 tensor-core kernels would take
// (mma_attention_takes) runs on v3 instead; the backward stays v2's, which reads v3's lse.
bool flash_v3_requested();

// q, out (B, S, H, D); k, v (B, S, Hkv, D); lse f32 (B, H, S): v2's layouts, D 64 or 128, bf16.
void flash_v3_forward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                      const MaskView& mask, Tensor& out, Tensor& lse);

}  // namespace llm
