// fp8 training's casts (torchao's Float8Linear as Axolotl's `fp8: true` runs it through
// accelerate), written once for the CPU and CUDA kernels: tensorwise dynamic scaling, the scale
// max(fp8) / max(amax, 1e-12) computed in double and kept in f32, the scaled value clamped to the
// format's range and rounded to nearest even (torch's cast), then read back times 1 / scale (what
// torch._scaled_mm multiplies by). e4m3fn (3 mantissa bits, normals from 2^-6, max 448) for inputs
// and weights, e5m2 (2 bits, from 2^-14, max 57344) for output gradients.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

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

// 2^e as a float, for e in f32's normal range.
LLM_HOST_DEVICE float power_of_two(int e) {
  const uint32_t bits = static_cast<uint32_t>(e + 127) << 23;
  float out;
  memcpy(&out, &bits, sizeof(out));
  return out;
}

// x (within the format's range) rounded to the nearest fp8 value, ties to even: x's exponent
// (at least the normals' smallest) gives the format's quantum there, a power of two, so x / quantum
// is exact and only the rounding to an integer rounds.
LLM_HOST_DEVICE float round_to_fp8(float x, const Fp8Spec& spec) {
  const float magnitude = fabsf(x);
  if (!(magnitude > 0.0f)) return x;  // zeros and NaN
  uint32_t bits;
  memcpy(&bits, &magnitude, sizeof(bits));
  int exponent = static_cast<int>(bits >> 23) - 127;  // f32 subnormals read as -127: clamped below
  if (exponent < spec.min_exponent) exponent = spec.min_exponent;
  const int quantum_exponent = exponent - spec.mantissa_bits;
  const float steps = magnitude * power_of_two(-quantum_exponent);  // at most 2^(mantissa_bits + 1)
#ifdef __CUDA_ARCH__
  const float rounded = rintf(steps);
#else
  // Adding and removing 1.5 x 2^23 leaves steps (< 2^22) rounded to an integer, ties to even.
  constexpr float kRoundingShift = 12582912.0f;
  const float rounded = (steps + kRoundingShift) - kRoundingShift;
#endif
  return copysignf(rounded * power_of_two(quantum_exponent), x);
}

// The float8_e4m3fn byte of `rounded`, a value round_to_fp8 gave in e4m3's range: the sign, 4
// exponent bits biased by 7 (0: the subnormals, multiples of 2^-9), 3 mantissa bits; NaN 0x7F.
LLM_HOST_DEVICE uint8_t e4m3_byte(float rounded) {
  uint32_t bits;
  memcpy(&bits, &rounded, sizeof(bits));
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80);
  const float magnitude = fabsf(rounded);
  if (magnitude != magnitude) return 0x7F;
  if (magnitude < power_of_two(-6)) return sign | static_cast<uint8_t>(magnitude * power_of_two(9));  // exact
  const int exponent = static_cast<int>((bits >> 23) & 0xFF) - 127;
  return sign | static_cast<uint8_t>((exponent + 7) << 3) | static_cast<uint8_t>((bits >> 20) & 0x7);
}

// The value of float8_e4m3fn byte `byte` (0x7F and 0xFF: NaN), as torch's cast to f32.
inline float e4m3_value(uint8_t byte) {
  const int exponent_bits = (byte >> 3) & 0xF, mantissa = byte & 0x7;
  float magnitude;
  if (exponent_bits == 0xF && mantissa == 0x7) magnitude = NAN;
  else if (exponent_bits == 0) magnitude = static_cast<float>(mantissa) * power_of_two(-9);
  else magnitude = (1.0f + static_cast<float>(mantissa) / 8.0f) * power_of_two(exponent_bits - 7);
  return (byte & 0x80) ? -magnitude : magnitude;
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
