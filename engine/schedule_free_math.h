// Schedule-Free (Defazio et al. 2024, "The Road Less Scheduled") for one element, written once for
// the CPU and CUDA kernels: the schedulefree package's AdamWScheduleFree, RAdamScheduleFree and
// SGDScheduleFree, which transformers builds for `schedule_free_adamw` / `_radam` / `_sgd`.
//
// Three sequences per weight: z takes plain (normalised) gradient steps, x is the running average
// of z the model is evaluated at, and y, where gradients are taken, interpolates the two:
// y = (1 - beta1) z + beta1 x. The parameter holds y while training and x while evaluating
// (engine/schedule_free.h switches it); the optimizer keeps z, and v for the Adam variants.
#pragma once
#include <cmath>

#include "engine/host_device.h"

namespace llm {

// One update's constants, each rounded to f32 from the double the reference computes in Python
// (from the schedule's lr as the optimizer gets it, in f32: its ckp1 may then be an ulp apart).
struct ScheduleFreeArgs {
  float averaging;  // ckp1: this step's weight in x's average, y moving that far toward z first
  float y_lr;       // lr x (beta1 (1 - ckp1) - 1): y's step along the gradient
  float lr;         // z's step
  float beta2, one_minus_beta2, bias_correction2, eps;  // v's (the Adam variants)
  float weight_decay;
  float grad_scale = 1.0f;  // gradient clipping's factor, applied to the gradient first
  bool second_moment;       // keeps v (AdamW, RAdam; not SGD)
  bool normalise;           // divides by sqrt(v / bias_correction2) + eps (RAdam once its rho_t > 4)
};

// torch's lerp as its vectorised CPU kernel computes it (one fused multiply-add from the nearer
// end): the mode switches and y's move toward z must round as the reference's do.
LLM_HOST_DEVICE float torch_lerp(float start, float end, float weight) {
  return fabsf(weight) < 0.5f ? fmaf(weight, end - start, start) : fmaf(weight - 1.0f, end - start, end);
}

// Updates z (and v) from g and returns the new y, in the reference's order of torch ops: v's
// moving average (mul_, then addcmul_), the gradient divided by v's debiased root plus eps, the
// decay at y added to it, y toward z by ckp1, then y and z along it (add_ and sub_ with alpha, each
// one fused multiply-add as torch's vectorised CPU add).
LLM_HOST_DEVICE float schedule_free_element(float y, float g, float& z, float* v, const ScheduleFreeArgs& a) {
  g *= a.grad_scale;
  if (a.second_moment) *v = *v * a.beta2 + a.one_minus_beta2 * g * g;
  if (a.normalise) g = g / (sqrtf(*v / a.bias_correction2) + a.eps);
  if (a.weight_decay != 0.0f) g = fmaf(y, a.weight_decay, g);
  y = torch_lerp(y, z, a.averaging);
  z = fmaf(g, -a.lr, z);
  return fmaf(g, a.y_lr, y);
}

}  // namespace llm
