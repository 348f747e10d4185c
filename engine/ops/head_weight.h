// HeadWeight: the lm_head weight as the fused losses (linear_cross_entropy, linear_sequence_logps)
// compute with it, and the dtype they form its gradient in.
//
// Mixed precision keeps lm_head (or the tied embedding) as an f32 master and computes the loss in
// bf16. Cast before the loss, its gradient would be a bf16 buffer that every chunk of rows adds
// into (a rounding to bf16 per chunk: 16 at 8192 tokens of Llama 3's vocabulary), then widened to
// f32 by the cast's backward beside it. Handed the master, a fused loss casts it here, unrecorded,
// and its dW GEMMs write f32 (cuBLASLt's bf16 x bf16 -> f32): summed over the chunks in f32 and
// never rounded to bf16, as master_linear forms a block linear's weight gradient.
#pragma once
#include "engine/autograd.h"
#include "engine/tensor.h"

namespace llm {

struct HeadWeight {
  Tensor compute;   // contiguous, in the hidden states' dtype
  DType grad_dtype;  // f32 for an f32 weight or one whose gradient is kept in f32; else its own
};

inline HeadWeight head_weight_for(const Tensor& weight, DType compute) {
  const bool f32_grad = weight.dtype() == DType::f32 || (weight.requires_grad() && weight.autograd_meta()->grad_in_f32);
  // Tensor::to is not recorded: the loss's own node reads the weight itself.
  return {weight.dtype() == compute ? weight.contiguous() : weight.to(compute), f32_grad ? DType::f32 : weight.dtype()};
}

}  // namespace llm
