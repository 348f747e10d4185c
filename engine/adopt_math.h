// ADOPT (Taniguchi et al. 2024, "ADOPT: Modified Adam Can Converge with Any beta2 with the
// Optimal Rate") for one element, written once for the CPU and CUDA kernels: Axolotl's
// `optimizer: adopt_adamw` (its ADOPT with decouple=True, the reference's clip of step^0.25).
#pragma once
#include <cmath>

#include "engine/host_device.h"

namespace llm {

// One update's constants. ADOPT normalises the gradient by the second moment of the steps before
// this one, so its first call only fills v and moves nothing.
struct AdoptArgs {
  float lr, beta1, beta2, eps, weight_decay;
  float clip;  // the normalised gradient is clipped to [-clip, clip]: updates before this one ^ 0.25
  bool first;  // the first call: v = g^2, the parameter unchanged
};

// Updates m and v from g and returns the new parameter: decoupled decay, then the step along m,
// the moving average of g / max(sqrt(v), eps) clipped, and only then v takes this g.
LLM_HOST_DEVICE float adopt_element(float p, float g, float& m, float& v, const AdoptArgs& a) {
  if (a.first) {
    v = g * g;
    return p;
  }
  p -= a.lr * a.weight_decay * p;
  const float normed = fminf(fmaxf(g / fmaxf(sqrtf(v), a.eps), -a.clip), a.clip);
  m += (1.0f - a.beta1) * (normed - m);  // torch's lerp_(normed, 1 - beta1)
  v = a.beta2 * v + (1.0f - a.beta2) * g * g;
  return p - a.lr * m;
}

}  // namespace llm
