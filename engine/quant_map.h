// bitsandbytes' dynamic 8-bit quantisation (Dettmers et al., "8-bit Optimizers via Block-wise
// Quantization"): 256 values spread log-uniformly over seven decades of [-1, 1] (signed) or
// [0, 1] (unsigned), and blockwise absmax scaling. Written once for the CPU and CUDA kernels.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

#include "engine/host_device.h"

namespace llm {

// Elements sharing one absmax: bitsandbytes' 8-bit blockwise optimizer block (256 since its 0.44,
// 2048 before). Small blocks keep one outlier from flattening its neighbours to zero; 256 costs
// 4 / 256 bytes per element and moment.
constexpr int64_t kQuantBlock = 256;

// bitsandbytes' create_dynamic_map(signed, max_exponent_bits=7, total_bits=8), sorted ascending.
// Decade i (10^(i-6)) holds the midpoints of linspace(0.1, 1, k + 1): k = 2^i per sign when
// signed, 2^(i+1) when not (the sign bit becomes a fraction bit); then 0 and 1.
inline std::array<float, 256> dynamic_quant_map(bool is_signed) {
  std::array<float, 256> map{};
  int n = 0;
  for (int i = 0; i < 7; i++) {
    const int items = is_signed ? (1 << i) : (2 << i);
    const float scale = static_cast<float>(std::pow(10.0, i - 6));
    for (int j = 0; j < items; j++) {
      const float lo = 0.1f + 0.9f * j / items, hi = 0.1f + 0.9f * (j + 1) / items;
      map[n++] = scale * (lo + hi) / 2.0f;
      if (is_signed) map[n++] = -scale * (lo + hi) / 2.0f;
    }
  }
  map[n++] = 0.0f;
  map[n++] = 1.0f;
  std::sort(map.begin(), map.end());
  return map;
}

// The code of the map entry nearest to x (ties to the lower one); `map` is sorted, 256 long.
LLM_HOST_DEVICE uint8_t quantize_nearest(const float* map, float x) {
  if (!(x > map[0])) return 0;
  if (x >= map[255]) return 255;
  // The last entry at or below x, by halving steps without branches (a branchy search mispredicts
  // about half its steps on moments); then map[lo] <= x < map[lo + 1].
  int lo = 0;
  for (int step = 128; step > 0; step >>= 1) lo += map[lo + step] <= x ? step : 0;
  return static_cast<uint8_t>(x - map[lo] <= map[lo + 1] - x ? lo : lo + 1);
}

// The code of a moment's value x (scaled by its block's absmax) in an 8-bit optimizer's state:
// the nearest entry, except that a signed map keeps x's sign as bitsandbytes' kernels do (a
// negative first moment whose nearest entry is 0 takes the negative one beside it), so a small
// momentum is not lost to 0 while its sign still steers updates (Lion's).
LLM_HOST_DEVICE uint8_t quantize_moment(const float* map, float x, bool is_signed) {
  const uint8_t code = quantize_nearest(map, x);
  const bool negative = copysignf(1.0f, x) < 0.0f, code_negative = copysignf(1.0f, map[code]) < 0.0f;
  if (is_signed && negative != code_negative) return x > 0.0f ? code + 1 : code - 1;
  return code;
}

}  // namespace llm
