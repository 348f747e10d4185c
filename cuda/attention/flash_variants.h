// defines: forced_flash_kernel, flash_tensor_core_forward, flash_tensor_core_backward: which
// tensor-core kernel variant (v2 cuda_flash_attention_mma.cu, v3 flash_attention_v3*.cu, v4
// flash_attention_v4*.cu, v5 = v4 with ping-pong and dQ by atomics, v6 = v5's forward and v4's
// backward with GQA groups split over blocks, v7 = v6 with v5's forward made persistent, v8 = v5
// with v6's splits) runs a flash attention call that those kernels take (mma_attention_takes),
// chosen on the device as variant_choice.h says.
#pragma once
#include <string>

#include "cuda/attention/cuda_attention_tiles.cuh"
#include "cuda/cuda_backend.h"

namespace llm {

// LLM_ATTENTION_KERNEL=v2, v3, v4, v5, v6, v7 or v8 in the environment: forward and backward run
// that variant without a choice (llm_bench --impl flash_v2 ... flash_v8, and the tests that compare
// them); "" when unset. A forced variant the device cannot run is an error.
std::string forced_flash_kernel();

// The forward: the forced variant, or the fastest that passed validation on this device for the
// call's shape class (head_dim, causal, mask kind), decided at its first call and logged once.
// False when no variant passed for the class: the caller runs the CUDA-core kernels.
bool flash_tensor_core_forward(CudaBackend& be, const Tensor& q, const Tensor& k, const Tensor& v,
                               const AttentionMask& mask, Tensor& out, Tensor& lse);

// The backward, chosen alike (apart from the forward: every variant reads every forward's lse);
// delta f32 (B, H, S) = rowsum(dout * out), computed by the caller. False as above.
bool flash_tensor_core_backward(CudaBackend& be, const Tensor& q, const Tensor& k, const Tensor& v,
                                const Tensor& dout, const Tensor& lse, const Tensor& delta,
                                const AttentionMask& mask, Tensor& dq, Tensor& dk, Tensor& dv);

}  // namespace llm
