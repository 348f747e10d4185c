// torch.optim's SGD, Adagrad and RMSprop for one element, written once for the CPU and CUDA
// kernels: transformers' `sgd`, `adagrad` and `rmsprop`, which build them from the Trainer's lr,
// parameter groups and optim_args. Each follows torch's single-tensor loop op by op (its CPU
// default): the L2 decay added to the gradient (add with alpha: one fused multiply-add), then the
// optimizer's state, then the step.
#pragma once
#include <cmath>

#include "engine/host_device.h"
#include "engine/schedule_free_math.h"  // torch_lerp

namespace llm {

enum class TorchOptimKind { sgd, adagrad, rmsprop };

// One update's constants, in f32 from the doubles torch holds (its Python floats).
struct TorchOptimArgs {
  TorchOptimKind kind = TorchOptimKind::sgd;
  float lr = 0.0f;            // this group's rate; Adagrad's already decayed: lr / (1 + (step - 1) lr_decay)
  float weight_decay = 0.0f;  // L2, added to the gradient (coupled, as torch.optim's)
  float momentum = 0.0f;      // SGD's and RMSprop's buffer (0: none)
  float one_minus_dampening = 1.0f;  // SGD's: buf = momentum buf + (1 - dampening) g
  bool nesterov = false;      // SGD's: steps along g + momentum buf
  bool first_step = false;    // SGD's buffer starts as the gradient itself
  float alpha = 0.99f, one_minus_alpha = 0.01f;  // RMSprop's square_avg rate
  float eps = 0.0f;           // Adagrad's and RMSprop's, added to the root
  bool centered = false;      // RMSprop's: the variance about grad_avg, not the raw second moment
  float grad_scale = 1.0f;    // gradient clipping's factor, applied to the gradient first
};

// Updates the state s and returns the new parameter. s[0]: SGD's momentum buffer, Adagrad's sum,
// RMSprop's square_avg; s[1]: RMSprop's momentum buffer; s[2]: RMSprop's grad_avg. Only the
// entries the settings use are touched.
LLM_HOST_DEVICE float torch_optim_element(float p, float g, float* s, const TorchOptimArgs& a) {
  g *= a.grad_scale;
  if (a.weight_decay != 0.0f) g = fmaf(p, a.weight_decay, g);
  switch (a.kind) {
    case TorchOptimKind::sgd:
      if (a.momentum != 0.0f) {
        s[0] = a.first_step ? g : fmaf(g, a.one_minus_dampening, s[0] * a.momentum);
        g = a.nesterov ? fmaf(s[0], a.momentum, g) : s[0];
      }
      return fmaf(g, -a.lr, p);
    case TorchOptimKind::adagrad:
      s[0] = s[0] + g * g;
      return p + -a.lr * g / (sqrtf(s[0]) + a.eps);  // addcdiv_: value x t1 / t2, in that order
    case TorchOptimKind::rmsprop: {
      s[0] = s[0] * a.alpha + a.one_minus_alpha * g * g;
      float avg;
      if (a.centered) {
        s[2] = torch_lerp(s[2], g, a.one_minus_alpha);
        avg = sqrtf(s[0] + -1.0f * s[2] * s[2]);
      } else {
        avg = sqrtf(s[0]);
      }
      avg += a.eps;
      if (a.momentum > 0.0f) {
        s[1] = s[1] * a.momentum + g / avg;
        return fmaf(s[1], -a.lr, p);
      }
      return p + -a.lr * g / avg;
    }
  }
  return p;
}

}  // namespace llm
