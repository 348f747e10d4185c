// Quantisation-aware training's fake quantisation (torchao's, as Axolotl's `qat` applies it), one
// group or row at a time, written once for the CPU and CUDA kernels. Each function mirrors the
// order of torchao's float operations, so that the CPU's f32 results are torch's bit for bit (its
// CPU division is a true division; products are rounded one by one, never fused).
//
// int4 weights (torchao's Int4WeightFakeQuantizer for bf16 activations): each group of `group`
// consecutive weights of a row maps [min, max] onto 16 levels,
//   s = max(max - min, 1e-6) / 15,   q = clamp(round((w - min) / s), 0, 15),
//   out = (q - 8) * s + (min + 8 s).
// No operation is detached there, so its gradient reaches the weights through min, max and s as
// well as through the rounding (a straight-through estimate, 1, where clamp passes it).
//
// int8 activations (torchao's IntxFakeQuantizer, per token, asymmetric): each row maps
// [min(row, 0), max(row, 0)] onto -128..127 with a zero point,
//   s = max((max - min) / 255, smallest normal),   zp = clamp(-128 - round(min / s), -128, 127),
//   q = clamp(round(x * (1 / s)) + zp, -128, 127),   out = (q - zp) * s.
// s and zp are chosen without gradients; the rounding passes the gradient straight through.
//
// torch's clamp passes a gradient only strictly inside its bounds (torch 2.15: a value on a
// bound gets none), and amax / amin share theirs evenly among the elements that tie.
#pragma once
#include <cmath>

#include "engine/host_device.h"

namespace llm {

constexpr float kInt4ScaleEps = 1e-6f;
constexpr float kInt4Levels = 15.0f;  // q in 0..15
constexpr float kInt4Middle = 8.0f;   // torchao's (MSLK's) symmetric offset
constexpr float kInt8Min = -128.0f, kInt8Max = 127.0f;
constexpr float kF32SmallestNormal = 1.17549435e-38f;

// Products and sums rounded one at a time (nvcc would otherwise fuse them into FMAs).
LLM_HOST_DEVICE float mul_rounded(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
LLM_HOST_DEVICE float add_rounded(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
LLM_HOST_DEVICE float clamp_to(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }
// torch.round: to nearest, ties to even (the default rounding mode).
LLM_HOST_DEVICE float round_even(float x) {
#ifdef __CUDA_ARCH__
  return rintf(x);
#else
  return std::nearbyint(x);
#endif
}

// ---- int4 weight groups ----
struct Int4Group {
  float lo, hi, scale;
  bool scale_trains;  // max - min above the eps clamp: s depends on min and max
};

LLM_HOST_DEVICE Int4Group int4_group(float lo, float hi) {
  const float range = hi - lo;
  const bool trains = range > kInt4ScaleEps;
  return {lo, hi, (trains ? range : kInt4ScaleEps) / kInt4Levels, trains};
}
// round((w - min) / s) before the clamp.
LLM_HOST_DEVICE float int4_level(float w, const Int4Group& g) { return round_even((w - g.lo) / g.scale); }
LLM_HOST_DEVICE float int4_fake_quant(float w, const Int4Group& g) {
  const float q = clamp_to(int4_level(w, g), 0.0f, kInt4Levels);
  return add_rounded(mul_rounded(q - kInt4Middle, g.scale), add_rounded(g.lo, mul_rounded(g.scale, kInt4Middle)));
}

// One element's part of the backward, given its upstream gradient `dy`: the gradient that reaches
// w directly (`direct`), and its contributions to the gradients of s and min.
struct Int4Partials {
  float direct, to_scale, to_min;
};
LLM_HOST_DEVICE Int4Partials int4_partials(float w, float dy, const Int4Group& g) {
  const float level = int4_level(w, g);
  const bool passes = level > 0.0f && level < kInt4Levels;
  const float q = clamp_to(level, 0.0f, kInt4Levels);
  const float d_level = passes ? mul_rounded(dy, g.scale) : 0.0f;  // through (q - 8) * s, then clamp
  const float shifted = w - g.lo;
  // s: (q - 8) * s and the zero point's 8 s explicitly, (w - min) / s through the level.
  const float to_scale = add_rounded(add_rounded(mul_rounded(dy, q - kInt4Middle), mul_rounded(dy, kInt4Middle)),
                                     -(d_level * shifted / (g.scale * g.scale)));
  // min: the zero point's min, and -(w - min) / s through the level.
  const float to_min = dy - d_level / g.scale;
  return {d_level / g.scale, to_scale, to_min};
}
// The gradients of a group's min and max once its elements' partials are summed: s = (max - min)
// / 15 passes its gradient on only when the eps clamp did not decide it.
LLM_HOST_DEVICE void int4_extreme_grads(const Int4Group& g, float sum_to_scale, float sum_to_min, float& d_min,
                                        float& d_max) {
  const float through_range = g.scale_trains ? sum_to_scale / kInt4Levels : 0.0f;
  d_max = through_range;
  d_min = sum_to_min - through_range;
}

// ---- int8 activation rows ----
struct Int8Row {
  float scale, inv_scale, zero_point;
};

// `round_like` rounds a value to the dtype the row is stored in: torchao chooses the scale and
// zero point in the input's dtype (bf16 on a GPU), identity for f32.
template <class RoundLike>
LLM_HOST_DEVICE Int8Row int8_row(float row_min, float row_max, RoundLike round_like) {
  const float lo = row_min < 0.0f ? row_min : 0.0f, hi = row_max > 0.0f ? row_max : 0.0f;
  float scale = round_like(round_like(hi - lo) / (kInt8Max - kInt8Min));
  if (scale < kF32SmallestNormal) scale = kF32SmallestNormal;  // an all-zero row
  const float zero_point = clamp_to(kInt8Min - round_even(round_like(lo / scale)), kInt8Min, kInt8Max);
  return {scale, 1.0f / scale, zero_point};
}
// round(x * (1 / s)) + zp before the clamp.
LLM_HOST_DEVICE float int8_level(float x, const Int8Row& r) { return round_even(mul_rounded(x, r.inv_scale)) + r.zero_point; }
LLM_HOST_DEVICE float int8_fake_quant(float x, const Int8Row& r) {
  return mul_rounded(clamp_to(int8_level(x, r), kInt8Min, kInt8Max) - r.zero_point, r.scale);
}
// Autograd rounds the gradient to the input's dtype after each product with the f32 scale.
template <class RoundLike>
LLM_HOST_DEVICE float int8_fake_quant_grad(float x, float dy, const Int8Row& r, RoundLike round_like) {
  const float level = int8_level(x, r);
  return level > kInt8Min && level < kInt8Max ? mul_rounded(round_like(mul_rounded(dy, r.scale)), r.inv_scale) : 0.0f;
}

}  // namespace llm
