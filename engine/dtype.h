// Element types of tensors and the bf16 <-> f32 conversions (round-to-nearest-even).
#pragma once
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

}  // namespace llm
