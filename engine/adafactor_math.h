// Adafactor (Shazeer and Stern 2018) as transformers' Trainer runs it for `optim: adafactor`
// (transformers.optimization.Adafactor with scale_parameter and relative_step off, so the rate is
// the schedule's; eps (1e-30, 1e-3), clip_threshold 1, decay_rate -0.8, no first moment): the
// per-element pieces, written once for the CPU and CUDA kernels. A matrix keeps the running means
// of g^2 + eps1 over its rows (one per row) and its columns (one per column); a vector keeps them
// per element.
#pragma once
#include <cmath>

#include "engine/host_device.h"

namespace llm {

struct AdafactorArgs {
  float lr;
  float beta2t, one_minus_beta2t;  // 1 - step^-0.8 and its complement, rounded from double as torch's scalars
  float eps1 = 1e-30f;             // added to each g^2
  float clip_threshold = 1.0f;     // the update's RMS is clipped to it
  float decay_step;                // -weight_decay x lr, rounded from double (p += p x this)
  float grad_scale = 1.0f;         // gradient clipping's factor, as AdamWArgs'
};

// The gradient as the Trainer's clipping leaves it, and its squared term.
LLM_HOST_DEVICE float adafactor_grad(float g, const AdafactorArgs& a) { return g * a.grad_scale; }
LLM_HOST_DEVICE float adafactor_square(float g, const AdafactorArgs& a) { return g * g + a.eps1; }

// A running mean of the squared terms (a row's, a column's or one element's) taking `mean`.
LLM_HOST_DEVICE float adafactor_average(float old, float mean, const AdafactorArgs& a) {
  return old * a.beta2t + a.one_minus_beta2t * mean;
}

// The parameter after the update u (the scaled gradient before its RMS clip): decoupled decay
// from the parameter as it was, then u divided by the clip's divisor and times lr.
LLM_HOST_DEVICE float adafactor_apply(float p, float u, float divisor, const AdafactorArgs& a) {
  const float step = u / divisor * a.lr;
  if (a.decay_step != 0.0f) p = p + p * a.decay_step;
  return p - step;
}

// The clip's divisor from the sum of u^2 over the tensor's n elements: max(RMS / threshold, 1).
LLM_HOST_DEVICE float adafactor_divisor(double sum_squares, double n, const AdafactorArgs& a) {
  const float rms = static_cast<float>(sqrt(sum_squares / n));
  return fmaxf(rms / a.clip_threshold, 1.0f);
}

}  // namespace llm
