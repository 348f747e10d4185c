// CAME (Luo et al. 2023, came_pytorch 0.1.3, Axolotl's `optimizer: came_pytorch`): Adafactor's
// factored second moment of g^2 + eps1 scales the gradient into an update u, clipped to RMS 1 as
// Adafactor's; a first moment m of u; the instability (u - m)^2 + eps2, factored the same way at
// beta3, scales m into the step. A vector keeps its second moment per element and steps along m.
// No bias correction. The per-element pieces, written once for the CPU and CUDA kernels.
#pragma once
#include "engine/adafactor_math.h"
#include "engine/host_device.h"

namespace llm {

struct CameArgs {
  // lr, decay_step, grad_scale, eps1 and the clip threshold, with beta2 as the second moment's
  // constant rate (beta2t and its complement, each rounded from double as torch's scalars).
  AdafactorArgs second;
  AdafactorArgs instability;  // only its rates: beta3 and 1 - beta3
  float beta1, one_minus_beta1;
  float eps2;
};

// m after the clipped update u (torch's exp_avg.mul_(beta1).add_(u, alpha=1 - beta1)).
LLM_HOST_DEVICE float came_momentum(float m, float u, const CameArgs& a) { return m * a.beta1 + a.one_minus_beta1 * u; }

// The instability term of one element.
LLM_HOST_DEVICE float came_instability(float u, float m, const CameArgs& a) {
  const float d = u - m;
  return d * d + a.eps2;
}

// The parameter after a step along `direction` (the scaled m): Adafactor's decoupled decay and
// step, with no clip divisor (dividing by 1 is exact).
LLM_HOST_DEVICE float came_apply(float p, float direction, const CameArgs& a) {
  return adafactor_apply(p, direction, 1.0f, a.second);
}

}  // namespace llm
