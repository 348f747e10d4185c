// PyTorch's AdamW for one element, written once for the CPU and CUDA kernels (f32 and 8-bit).
#pragma once
#include <cmath>

#include "engine/host_device.h"

namespace llm {

// One update's constants: step_size = lr / (1 - beta1^t), bias2_sqrt = sqrt(1 - beta2^t);
// weight_decay is 0 for parameters that take none. grad_scale: gradient clipping's factor
// (clip_coefficient in engine/optimizer.h), applied here rather than by a pass over every
// gradient before the update: the same f32 product, one read and one write of the gradients less.
struct AdamWArgs {
  float lr, beta1, beta2, eps, weight_decay, step_size, bias2_sqrt;
  float grad_scale = 1.0f;
};

// Updates m and v from g and returns the new parameter: decoupled decay first (it does not pass
// through the moments), then the bias-corrected step.
LLM_HOST_DEVICE float adamw_element(float p, float g, float& m, float& v, const AdamWArgs& a) {
  g *= a.grad_scale;
  p *= 1.0f - a.lr * a.weight_decay;
  m = a.beta1 * m + (1.0f - a.beta1) * g;
  v = a.beta2 * v + (1.0f - a.beta2) * g * g;
  return p - a.step_size * m / (sqrtf(v) / a.bias2_sqrt + a.eps);
}

// StableAdamW's (Wortsman et al. 2023, torch-optimi's) per-tensor term: the mean over a tensor of
// g^2 / max(v_hat, eps^2) with v_hat the bias-corrected second moment after this update's g; its
// square root above 1 divides the tensor's learning rate.
struct StableRmsArgs {
  float beta2;
  float bias2;   // 1 - beta2^t
  float eps_sq;  // eps^2
  float grad_scale = 1.0f;
};

// One element's g^2 / max(v_hat, eps^2), v the second moment before the update.
LLM_HOST_DEVICE float stable_adamw_ratio(float g, float v, const StableRmsArgs& a) {
  g *= a.grad_scale;
  const float v_hat = (a.beta2 * v + (1.0f - a.beta2) * g * g) / a.bias2;
  return g * g / fmaxf(v_hat, a.eps_sq);
}

}  // namespace llm
