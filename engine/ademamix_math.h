// AdEMAMix (Pagliardini et al. 2024, "The AdEMAMix Optimizer: Better, Faster, Older") for one
// element, written once for the CPU and CUDA kernels: bitsandbytes' AdEMAMix, which transformers'
// ademamix / ademamix_8bit (and their paged_ spellings) build with the Trainer's Adam betas, beta3
// 0.9999 and alpha 5 unless optim_args says otherwise.
#pragma once
#include <cmath>

#include "engine/host_device.h"

namespace llm {

// One update's constants: beta3 and alpha as their schedules stand at this step (t_beta3,
// t_alpha; constant without them), bias1 = 1 - beta1^t, bias2_sqrt = sqrt(1 - beta2^t).
struct AdemamixArgs {
  float lr, beta1, beta2, beta3, alpha, eps, weight_decay, bias1, bias2_sqrt;
  float grad_scale = 1.0f;  // gradient clipping's factor, as AdamWArgs'
};

// Moves the fast EMA m1 (beta1), the slow one m2 (beta3, no bias correction) and the second
// moment nu (beta2), and returns the new parameter: decoupled decay first, then
// lr (m1 / bias1 + alpha m2) / (sqrt(nu) / bias2_sqrt + eps), in bitsandbytes' CPU order.
LLM_HOST_DEVICE float ademamix_element(float p, float g, float& m1, float& m2, float& nu, const AdemamixArgs& a) {
  g *= a.grad_scale;
  m1 = m1 * a.beta1 + (1.0f - a.beta1) * g;
  m2 = m2 * a.beta3 + (1.0f - a.beta3) * g;
  nu = nu * a.beta2 + (1.0f - a.beta2) * g * g;
  if (a.weight_decay > 0.0f) p *= 1.0f - a.lr * a.weight_decay;
  return p - a.lr * ((m1 / a.bias1 + a.alpha * m2) / (sqrtf(nu) / a.bias2_sqrt + a.eps));
}

}  // namespace llm
