// Element types of tensors, the bf16 <-> f32 conversions (round-to-nearest-even) and fp16's
// rounding of an f32.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace llm {

// u8 holds quantised codes (8-bit AdamW's moments); no op computes in it.
enum class DType : uint8_t { f32, bf16, i32, u8 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::bf16: return 2;
    case DType::u8: return 1;
    default: return 4;
  }
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::bf16: return "bf16";
    case DType::i32: return "i32";
    case DType::u8: return "u8";
  }
  return "?";
}

// bf16 keeps the top 16 bits of an f32. Rounding adds 0x7fff plus the lowest kept bit, so ties go
// to the even value; NaNs are kept quiet instead of rounding up into infinity.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// IEEE half precision: 1 sign, 5 exponent (bias 15), 10 mantissa bits; every half is an f32.
inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu,
                 mant = h & 0x3ffu;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24
    float f = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -f : f;
  }
  uint32_t u =
      sign | (exp == 0x1f ? 0x7f800000u : (exp + 112) << 23) | (mant << 13);  // 112 = 127 - 15
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// x rounded to the nearest fp16 value (ties to even), kept as an f32: what torch's
// `.to(torch.float16)` keeps of it (bitsandbytes' int8 quantisation starts with it; Axolotl's
// ReLoRA saves its merged weights so). 11 significant bits, or a multiple of 2^-24 among fp16's
// subnormals; beyond fp16's largest value (65504, rounding up from 65520) infinity. Dividing by a
// power of two is exact, so one nearbyint (the default rounding mode: ties to even) rounds once.
inline float round_to_f16(float x) {
  if (x == 0.0f || !std::isfinite(x)) return x;
  if (std::fabs(x) >= 65520.0f) return std::copysign(INFINITY, x);
  int e = 0;
  std::frexp(x, &e);  // |x| in [2^(e-1), 2^e)
  const float quantum = std::ldexp(1.0f, std::max(e - 11, -24));
  return std::nearbyint(x / quantum) * quantum;
}

}  // namespace llm
