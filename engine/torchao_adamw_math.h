// torchao's AdamW (torchao.optim's single_param_adam with is_adamw, as its AdamW8bit runs it) for
// one element, written once for the CPU and CUDA kernels: Axolotl's `optimizer: adamw_torch_8bit`,
// which transformers builds as torchao's AdamW8bit. Its moments move by lerp and the step divides
// the debiased first moment by sqrt(v) / sqrt(1 - beta2^t) + eps, each op rounded to f32 as
// torch.compile's kernels round it.
#pragma once
#include <cmath>

#include "engine/host_device.h"

namespace llm {

// One update's constants, in f32 as torchao computes them: lr is the group's f32 tensor, lr_decay
// its product with weight_decay, the rates' complements rounded from the config's doubles, the
// bias corrections from f32 powers of the f32 step count.
struct TorchaoAdamWArgs {
  float lr, lr_decay, one_minus_beta1, one_minus_beta2, bias1, bias2_sqrt, eps;
  float grad_scale = 1.0f;  // gradient clipping's factor
};

// torch's lerp as its decomposition computes it (a product and a sum, from the nearer end).
LLM_HOST_DEVICE float decomposed_lerp(float start, float end, float weight) {
  return fabsf(weight) < 0.5f ? start + weight * (end - start) : end + (weight - 1.0f) * (end - start);
}

// Updates m and v from g and returns the new parameter: decoupled decay, the moments, then the step.
LLM_HOST_DEVICE float torchao_adamw_element(float p, float g, float& m, float& v, const TorchaoAdamWArgs& a) {
  g *= a.grad_scale;
  p = p - a.lr_decay * p;
  m = decomposed_lerp(m, g, a.one_minus_beta1);
  v = decomposed_lerp(v, g * g, a.one_minus_beta2);
  const float denom = sqrtf(v) / a.bias2_sqrt + a.eps;
  return p - a.lr * (m / a.bias1) / denom;
}

}  // namespace llm
