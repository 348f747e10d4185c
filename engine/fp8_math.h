// fp8 training's casts (torchao's Float8Linear as Axolotl's `fp8: true` runs it through
// accelerate), written once for the CPU and CUDA kernels: tensorwise dynamic scaling, the scale
// max(fp8) / max(amax, 1e-12) computed in double and kept in f32, the scaled value clamped to the
// format's range and rounded to nearest even (torch's cast), then read back times 1 / scale (what
// torch._scaled_mm multiplies by). e4m3fn (3 mantissa bits, normals from 2^-6, max 448) for inputs
// and weights, e5m2 (2 bits, from 2^-14, max 57344) for output gradients.
#pragma once
#include <cmath>

#include "engine/host_device.h"

namespace llm {

enum class Fp8Format { e4m3, e5m2 };

struct Fp8Spec {
  int mantissa_bits;
  int min_exponent;  // of the normals; below it the subnormals' fixed quantum
  float max;
};

LLM_HOST_DEVICE Fp8Spec fp8_spec(Fp8Format format) {
  return format == Fp8Format::e4m3 ? Fp8Spec{3, -6, 448.0f} : Fp8Spec{2, -14, 57344.0f};
}

// x (within the format's range) rounded to the nearest fp8 value, ties to even.
LLM_HOST_DEVICE float round_to_fp8(float x, const Fp8Spec& spec) {
  const float magnitude = fabsf(x);
  if (!(magnitude > 0.0f)) return x;  // zeros and NaN
  int exponent = 0;
  frexpf(magnitude, &exponent);  // magnitude = m 2^exponent, m in [0.5, 1)
  exponent = exponent - 1 < spec.min_exponent ? spec.min_exponent : exponent - 1;
  const float quantum = ldexpf(1.0f, exponent - spec.mantissa_bits);  // a power of two: exact division
#ifdef __CUDA_ARCH__
  const float rounded = rintf(magnitude / quantum) * quantum;
#else
  const float rounded = std::nearbyint(magnitude / quantum) * quantum;
#endif
  return copysignf(rounded, x);
}

LLM_HOST_DEVICE float fp8_scale(float amax, const Fp8Spec& spec) {
  const double clamped = static_cast<double>(amax) > 1e-12 ? static_cast<double>(amax) : 1e-12;
  return static_cast<float>(static_cast<double>(spec.max) / clamped);
}

// The value the GEMM reads for x: its fp8 code times 1 / scale.
LLM_HOST_DEVICE float fake_fp8(float x, float scale, float inverse_scale, const Fp8Spec& spec) {
  float scaled = x * scale;
  scaled = scaled > spec.max ? spec.max : (scaled < -spec.max ? -spec.max : scaled);
  return round_to_fp8(scaled, spec) * inverse_scale;
}

}  // namespace llm
