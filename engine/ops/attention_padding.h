// defines: attend_at_head_dim, which runs an attention at a larger head_dim than its inputs have
// (for backends whose tiled kernels exist for a few head_dims only: CUDA's 32, 64 and 128)
#pragma once
#include <functional>

#include "engine/tensor.h"

namespace llm {

using AttendFn = std::function<Tensor(const Tensor& q, const Tensor& k, const Tensor& v)>;

// attend(q, k, v) computed at head_dim `padded` (> D, q (B, S, H, D), k and v (B, S, Hkv, D)):
// zero columns add nothing to a score and come out of the output as zeros, and q is scaled by
// sqrt(padded / D) so that the kernel's 1/sqrt(padded) is the model's 1/sqrt(D). Differentiable.
Tensor attend_at_head_dim(const AttendFn& attend, const Tensor& q, const Tensor& k, const Tensor& v,
                          int64_t padded);

}  // namespace llm
