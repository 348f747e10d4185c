// torchao's AdamW (torchao.optim's single_param_adam with is_adamw, as its AdamW8bit runs it) for
// one element, written once for the CPU and CUDA kernels: Axolotl's `optimizer: adamw_torch_8bit`
// and `adamw_torch_4bit`, which transformers builds as torchao's AdamW8bit and AdamW4bit, and
// `ao_adamw_fp8`, Axolotl's AdamWFp8. Its moments move by lerp and the step divides
// the debiased first moment by sqrt(v) / sqrt(1 - beta2^t) + eps, each op rounded to f32 as
// torch.compile's kernels round it.
#pragma once
#include <cmath>
#include <string>

#include "engine/host_device.h"

namespace llm {

// How torchao keeps a quantised moment: codes of its dynamic maps, 8 bits (AdamW8bit) or 4 packed
// two a byte (AdamW4bit), or float8_e4m3fn bytes (AdamWFp8); each with an f32 scale per block.
enum class TorchaoCodes { dynamic_8bit, dynamic_4bit, fp8 };
inline int code_bits(TorchaoCodes codes) { return codes == TorchaoCodes::dynamic_4bit ? 4 : 8; }
// "8-bit", "4-bit" or "fp8": in state formats (which a resume compares) and start-up lines.
inline std::string torchao_codes_name(TorchaoCodes codes) {
  return codes == TorchaoCodes::fp8 ? "fp8" : codes == TorchaoCodes::dynamic_4bit ? "4-bit" : "8-bit";
}

// A lerp weight as torch.compile folds it: from the nearer end, its coefficient w or w - 1
// worked out in double from the Python float before the cast to f32.
struct LerpWeight {
  float coefficient;
  bool from_end;  // |w| >= 0.5: end + (w - 1)(end - start)
};
inline LerpWeight lerp_weight(double w) { return {static_cast<float>(std::fabs(w) < 0.5 ? w : w - 1.0), std::fabs(w) >= 0.5}; }

// One update's constants, in f32 as torchao computes them: lr is the group's f32 tensor, lr_decay
// its product with weight_decay, the moments' lerp weights (1 - beta) from the config's doubles, the
// bias corrections from f32 powers of the f32 step count.
struct TorchaoAdamWArgs {
  float lr, lr_decay;
  LerpWeight m_weight, v_weight;
  float bias1, bias2_sqrt, eps;
  float grad_scale = 1.0f;  // gradient clipping's factor
  TorchaoCodes codes = TorchaoCodes::dynamic_8bit;  // of the quantised moments
};

// torch's lerp as its decomposition computes it (a product and a sum, from the nearer end).
LLM_HOST_DEVICE float decomposed_lerp(float start, float end, LerpWeight w) {
  return w.from_end ? end + w.coefficient * (end - start) : start + w.coefficient * (end - start);
}

// Updates m and v from g and returns the new parameter: decoupled decay, the moments, then the step.
LLM_HOST_DEVICE float torchao_adamw_element(float p, float g, float& m, float& v, const TorchaoAdamWArgs& a) {
  g *= a.grad_scale;
  p = p - a.lr_decay * p;
  m = decomposed_lerp(m, g, a.m_weight);
  v = decomposed_lerp(v, g * g, a.v_weight);
  const float denom = sqrtf(v) / a.bias2_sqrt + a.eps;
  return p - a.lr * (m / a.bias1) / denom;
}

}  // namespace llm
