// Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms") for one element,
// written once for the CPU and CUDA kernels: bitsandbytes' Lion, which transformers' lion_32bit /
// lion_8bit (and their paged_ spellings) build, with the Trainer's adam_beta1 and adam_beta2.
#pragma once
#include <cmath>

#include "engine/host_device.h"

namespace llm {

// One update's constants; grad_scale is gradient clipping's factor, as AdamWArgs'.
struct LionArgs {
  float lr, beta1, beta2, weight_decay;
  float grad_scale = 1.0f;
};

// Updates m from g and returns the new parameter: decoupled decay, then a step of lr along the
// sign of beta1's interpolation of m and g (0 where that is 0, as torch.sign), and only then m
// takes g at beta2. Its arithmetic in bitsandbytes' order (its CPU and CUDA kernels agree).
LLM_HOST_DEVICE float lion_element(float p, float g, float& m, const LionArgs& a) {
  g *= a.grad_scale;
  if (a.weight_decay > 0.0f) p *= 1.0f - a.lr * a.weight_decay;
  const float c = m * a.beta1 + g * (1.0f - a.beta1);
  p -= a.lr * static_cast<float>((c > 0.0f) - (c < 0.0f));
  m = m * a.beta2 + (1.0f - a.beta2) * g;
  return p;
}

}  // namespace llm
