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
// signed, 2^(i+1) when not (the sign bit becomes a fraction bit); then 0 and 1. In f32 as torch
// computes it (bitsandbytes' and torchao's maps alike): linspace's points from the nearer end, each
// rounded once (its kernel's fused multiply-add), the midpoints halved, each times the decade in f32.
inline std::array<float, 256> dynamic_quant_map(bool is_signed) {
  std::array<float, 256> map{};
  int n = 0;
  for (int i = 0; i < 7; i++) {
    const int items = is_signed ? (1 << i) : (2 << i);
    const float scale = static_cast<float>(std::pow(10.0, i - 6));
    const float start = 0.1f, end = 1.0f, step = (end - start) / static_cast<float>(items);
    auto point = [&](int k) {  // torch.linspace(0.1, 1, items + 1)[k]
      return k < (items + 1) / 2 ? fmaf(step, static_cast<float>(k), start) : fmaf(-step, static_cast<float>(items - k), end);
    };
    for (int j = 0; j < items; j++) {
      const float mean = (point(j) + point(j + 1)) / 2.0f;
      map[n++] = scale * mean;
      if (is_signed) map[n++] = -(scale * mean);
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

// torchao's code of x (scaled into [-1, 1]): the last entry at or below x, or the next one when
// x is at least halfway to it (ties up), as torchao.optim's quantize_8bit_with_qmap.
LLM_HOST_DEVICE uint8_t quantize_torchao(const float* map, float x) {
  int lo = 0;
  for (int step = 128; step > 0; step >>= 1) lo += x >= map[lo + step] ? step : 0;
  if (lo == 255) return 255;
  return static_cast<uint8_t>(x - map[lo] >= (map[lo + 1] - map[lo]) * 0.5f ? lo + 1 : lo);
}

// How a block of moments becomes codes, for the blockwise 8-bit update loops (CPU and CUDA):
// `prepare` turns the block's largest magnitude into what `code` takes, `stored` into the absmax
// kept beside the codes.
// bitsandbytes': scaled by 1 / absmax (a block of zeros keeps absmax 0), a first moment's sign kept.
struct BnbBlockQuant {
  LLM_HOST_DEVICE static float prepare(float block_max) { return block_max > 0.0f ? 1.0f / block_max : 0.0f; }
  LLM_HOST_DEVICE static float stored(float block_max) { return block_max; }
  LLM_HOST_DEVICE static uint8_t code(const float* map, float x, float inv, bool is_signed) {
    return quantize_moment(map, x * inv, is_signed);
  }
};
// torchao's (torchao.optim's OptimState8bit): divided by the absmax clipped to 1e-12, which is
// also what it keeps; the nearest code, ties up, no sign kept.
struct TorchaoBlockQuant {
  LLM_HOST_DEVICE static float prepare(float block_max) { return fmaxf(block_max, 1e-12f); }
  LLM_HOST_DEVICE static float stored(float block_max) { return fmaxf(block_max, 1e-12f); }
  LLM_HOST_DEVICE static uint8_t code(const float* map, float x, float scale, bool /*is_signed*/) {
    return quantize_torchao(map, x / scale);
  }
};

}  // namespace llm
