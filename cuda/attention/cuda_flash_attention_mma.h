// The tensor-core (mma.sync, bf16 in, f32 accumulate) FlashAttention-2 kernels of
// cuda/attention/cuda_flash_attention_mma.cu, called by the tiled attention's entry points in
// cuda/attention/cuda_flash_attention.cu for the calls they take.
#pragma once
#include <functional>
#include <initializer_list>

#include "cuda/attention/cuda_attention_tiles.cuh"

namespace llm {

// Whether the tensor-core kernels take a call: bf16 operands with head_dim 64 or 128, 16-byte
// aligned, and a mask of key spans only (an additive bias stays on the CUDA-core kernels).
// LLM_ATTENTION_SIMT=1 in the environment sends every call to the CUDA-core kernels, so
// llm_bench can compare the two (--impl flash_simt).
bool mma_attention_takes(const AttentionMask& mask,
                         std::initializer_list<std::reference_wrapper<const Tensor>> operands);

// q, out (B, S, H, D); k, v (B, S, Hkv, D); lse f32 (B, H, S); contiguous bf16 on the device.
void mma_attention_forward(cudaStream_t stream, const Tensor& q, const Tensor& k,
                           const Tensor& v, const MaskView& mask, Tensor& out, Tensor& lse);

// delta f32 (B, H, S) = rowsum(dout * out), computed by the caller.
void mma_attention_backward(cudaStream_t stream, const Tensor& q, const Tensor& k,
                            const Tensor& v, const Tensor& dout, const Tensor& lse,
                            const Tensor& delta, const MaskView& mask, Tensor& dq, Tensor& dk,
                            Tensor& dv);

}  // namespace llm
