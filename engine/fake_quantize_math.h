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
// fp8 rows (torchao's Float8FakeQuantizer, PerRow: Axolotl's float8_e4m3fn activations and
// weights; and the first half of its int4 weights for fp8 activations): each row's scale
//   s = max(amax|row|, lower bound) / 448,   out = e4m3(clamp(x / s, +-448)) * s,
// s in the tensor's dtype; nothing is detached, so the gradient reaches x through the cast (straight
// through) and through s to the row's largest magnitudes. torch rounds the gradient that the cast
// passes to e4m3 as well (the backward of the fp8 tensor's widening cast narrows the gradient).
//
// int4 symmetric groups (torchao's Int4WeightFakeQuantizer for fp8 activations, after the fp8
// rows above): each group of `group` values
//   s = max(amax|group| / 8, 1e-6),   q = clamp(round(v * (1 / s)), -8, 7),   out = q * s,
// again with gradients through s.
//
// mxfp4 (torchao's MX fake quantisation, OCP Microscaling: Axolotl's weight_dtype mxfp4, on inputs
// and weights): each block of 32 consecutive values shares a power-of-two scale 2^e, e =
// ceil(log2(amax / 6)) (RCEIL, e8m0), and each value becomes the nearest e2m1 (0, 0.5, 1, 1.5, 2,
// 3, 4, 6; ties to even) of x / 2^e clamped to +-6, times 2^e. Its gradient passes straight
// through (torchao's backward multiplies by the dequantised operands).
//
// ternary weights and int8 absmax activations (Axolotl's own BitNet b1.58 quantisers, its
// weight_dtype ternary): each weight row's scale s = max(mean|row|, 1e-5), out = clamp(round(w /
// s), -1, 1) * s; each input row's s = max(amax|row|, 1e-5) / 127, out = clamp(round(x / s),
// -128, 127) * s. Both are applied as x + (q - x).detach(): the forward's value is that sum (not
// always q itself in f32), and the gradient passes straight through.
//
// torch's clamp passes a gradient only strictly inside its bounds (torch 2.15: a value on a
// bound gets none), and amax / amin share theirs evenly among the elements that tie.
#pragma once
#include <cmath>

#include "engine/fp8_math.h"
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

// ---- fp8 rows ----
constexpr float kE4m3Max = 448.0f;

struct Fp8Row {
  float scale;        // in the row's dtype
  bool scale_trains;  // the row's largest |x| above the lower bound: s depends on it
};
template <class RoundLike>
LLM_HOST_DEVICE Fp8Row fp8_row(float amax, float lower_bound, RoundLike round_like) {
  const bool trains = amax > lower_bound;
  return {round_like((trains ? amax : lower_bound) / kE4m3Max), trains};
}
// x / s in f32 (torchao widens x first), before the clamp.
LLM_HOST_DEVICE float fp8_row_scaled(float x, const Fp8Row& r) { return x / r.scale; }
LLM_HOST_DEVICE float fp8_row_code(float x, const Fp8Row& r) {
  return round_to_fp8(clamp_to(fp8_row_scaled(x, r), -kE4m3Max, kE4m3Max), fp8_spec(Fp8Format::e4m3));
}
LLM_HOST_DEVICE float fp8_row_fake_quant(float x, const Fp8Row& r) { return mul_rounded(fp8_row_code(x, r), r.scale); }

// An element's part of the backward for upstream gradient dy (f32): the gradient that reaches x
// through the cast (before its dtype's rounding), and its contribution to the scale's gradient.
struct Fp8RowPartials {
  float direct, to_scale;
};
LLM_HOST_DEVICE Fp8RowPartials fp8_row_partials(float x, float dy, const Fp8Row& r) {
  const float scaled = fp8_row_scaled(x, r);
  const bool passes = scaled > -kE4m3Max && scaled < kE4m3Max;
  const float code = round_to_fp8(clamp_to(scaled, -kE4m3Max, kE4m3Max), fp8_spec(Fp8Format::e4m3));
  // The gradient of the code, narrowed to e4m3 as torch narrows it (saturating).
  const float d_code = round_to_fp8(clamp_to(mul_rounded(dy, r.scale), -kE4m3Max, kE4m3Max),
                                    fp8_spec(Fp8Format::e4m3));
  const float d_scaled = passes ? d_code : 0.0f;
  // s: code * s directly, and x / s through the cast (torch's -g * ((x / s) / s)).
  return {d_scaled / r.scale, add_rounded(mul_rounded(dy, code), -mul_rounded(d_scaled, scaled / r.scale))};
}
// The gradient of the row's amax from its scale's (summed over the row, in the row's dtype).
template <class RoundLike>
LLM_HOST_DEVICE float fp8_row_amax_grad(const Fp8Row& r, float sum_to_scale, RoundLike round_like) {
  return r.scale_trains ? round_like(round_like(sum_to_scale) / kE4m3Max) : 0.0f;
}

// ---- int4 symmetric groups ----
constexpr float kInt4SymmetricMax = 8.0f;  // MSLK's scale divisor: q in -8..7
constexpr float kInt4SymmetricLow = -8.0f, kInt4SymmetricHigh = 7.0f;

struct Int4SymmetricGroup {
  float scale, inverse;  // inverse: 1 / s in the group's dtype
  bool scale_trains;     // amax / 8 above the 1e-6 clamp
};
template <class RoundLike>
LLM_HOST_DEVICE Int4SymmetricGroup int4_symmetric_group(float amax, RoundLike round_like) {
  const float raw = round_like(amax / kInt4SymmetricMax);
  const bool trains = raw > kInt4ScaleEps;
  const float scale = trains ? raw : round_like(kInt4ScaleEps);
  return {scale, round_like(1.0f / scale), trains};
}
// round(v * (1 / s)) before the clamp.
template <class RoundLike>
LLM_HOST_DEVICE float int4_symmetric_level(float v, const Int4SymmetricGroup& g, RoundLike round_like) {
  return round_even(round_like(mul_rounded(v, g.inverse)));
}
template <class RoundLike>
LLM_HOST_DEVICE float int4_symmetric_fake_quant(float v, const Int4SymmetricGroup& g, RoundLike round_like) {
  const float q = clamp_to(int4_symmetric_level(v, g, round_like), kInt4SymmetricLow, kInt4SymmetricHigh);
  return round_like(mul_rounded(q, g.scale));
}
// The gradient that reaches v through the rounding, and its contributions to the gradients of
// 1 / s (to_inverse) and of s itself (to_scale, from q * s).
struct Int4SymmetricPartials {
  float direct, to_inverse, to_scale;
};
template <class RoundLike>
LLM_HOST_DEVICE Int4SymmetricPartials int4_symmetric_partials(float v, float dy, const Int4SymmetricGroup& g,
                                                              RoundLike round_like) {
  const float level = int4_symmetric_level(v, g, round_like);
  const bool passes = level > kInt4SymmetricLow && level < kInt4SymmetricHigh;
  const float q = clamp_to(level, kInt4SymmetricLow, kInt4SymmetricHigh);
  const float d_level = passes ? round_like(mul_rounded(dy, g.scale)) : 0.0f;
  return {round_like(mul_rounded(d_level, g.inverse)), mul_rounded(d_level, v), mul_rounded(dy, q)};
}
// The gradient of the group's amax from the summed partials: 1 / s passes -g / s^2 (torch's
// reciprocal backward, -g * r * r), s passes it on through amax / 8 unless the clamp decided s.
template <class RoundLike>
LLM_HOST_DEVICE float int4_symmetric_amax_grad(const Int4SymmetricGroup& g, float sum_to_inverse, float sum_to_scale,
                                               RoundLike round_like) {
  if (!g.scale_trains) return 0.0f;
  const float through_inverse = round_like(-mul_rounded(round_like(sum_to_inverse), round_like(mul_rounded(g.inverse, g.inverse))));
  const float d_scale = round_like(add_rounded(round_like(sum_to_scale), through_inverse));
  return round_like(d_scale / kInt4SymmetricMax);
}

// ---- mxfp4 blocks ----
constexpr int kMxBlock = 32;
constexpr float kE2m1Max = 6.0f;
constexpr int kE8m0Bias = 127, kE8m0Nan = 255;

// The block's biased e8m0 exponent: ceil(log2(amax / 6)) in f32 (torch's log2), within +-127;
// an all-zero block gets 0 (log2 of 0 is -inf), a NaN one e8m0's NaN (its values all NaN).
LLM_HOST_DEVICE int mxfp4_block_exponent(float amax) {
  if (amax != amax) return kE8m0Nan;
  const float power = ceilf(log2f(amax / kE2m1Max));
  return static_cast<int>(clamp_to(power, -static_cast<float>(kE8m0Bias), static_cast<float>(kE8m0Bias))) + kE8m0Bias;
}
LLM_HOST_DEVICE float mxfp4_fake_quant(float x, int biased_exponent) {
  if (biased_exponent == kE8m0Nan) return NAN;
  // torchao scales by the reciprocal 2^(127 - e), or by 1 for e = 0, and dequantises times 2^(e - 127)
  // (a subnormal f32 at e = 0).
  const float reciprocal = biased_exponent == 0 ? 1.0f : ldexpf(1.0f, kE8m0Bias - biased_exponent);
  const float code = round_to_fp8(clamp_to(x * reciprocal, -kE2m1Max, kE2m1Max), Fp8Spec{1, 0, kE2m1Max});
  return code * ldexpf(1.0f, biased_exponent - kE8m0Bias);
}

// ---- ternary weights and int8 absmax inputs ----
constexpr float kTernaryEps = 1e-5f;

// A row's scale from the sum of its magnitudes: torch's mean (the sum over n) clamped.
template <class RoundLike>
LLM_HOST_DEVICE float ternary_scale(float abs_sum, int64_t n, RoundLike round_like) {
  return round_like(fmaxf(round_like(abs_sum / static_cast<float>(n)), kTernaryEps));
}
template <class RoundLike>
LLM_HOST_DEVICE float ternary_fake_quant(float w, float scale, RoundLike round_like) {
  return round_like(mul_rounded(clamp_to(rintf(round_like(w / scale)), -1.0f, 1.0f), scale));
}
template <class RoundLike>
LLM_HOST_DEVICE float int8_absmax_scale(float amax, RoundLike round_like) {
  return round_like(round_like(fmaxf(amax, kTernaryEps)) / kInt8Max);
}
template <class RoundLike>
LLM_HOST_DEVICE float int8_absmax_fake_quant(float x, float scale, RoundLike round_like) {
  return round_like(mul_rounded(clamp_to(rintf(round_like(x / scale)), kInt8Min, kInt8Max), scale));
}
// x + (q - x).detach(), rounded as torch rounds each operation.
template <class RoundLike>
LLM_HOST_DEVICE float straight_through_value(float x, float q, RoundLike round_like) {
  return round_like(add_rounded(x, round_like(q - x)));
}

// Ties at the largest magnitude share its gradient evenly, signed as abs's backward signs it.
LLM_HOST_DEVICE float amax_share(float x, float amax, float d_amax, int ties) {
  if (fabsf(x) != amax) return 0.0f;
  return x > 0.0f ? d_amax / static_cast<float>(ties) : (x < 0.0f ? -d_amax / static_cast<float>(ties) : 0.0f);
}

}  // namespace llm
