// bitsandbytes' dynamic 8-bit quantisation (Dettmers et al., "8-bit Optimizers via Block-wise
// Quantization"): 256 values spread log-uniformly over seven decades of [-1, 1] (signed) or
// [0, 1] (unsigned), and blockwise absmax scaling; torchao's 4-bit maps and its float8 codes beside
// them. Written once for the CPU and CUDA kernels.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

#include "engine/fp8_math.h"
#include "engine/host_device.h"

namespace llm {

// Elements sharing one absmax: bitsandbytes' 8-bit blockwise optimizer block (256 since its 0.44,
// 2048 before). Small blocks keep one outlier from flattening its neighbours to zero; 256 costs
// 4 / 256 bytes per element and moment.
constexpr int64_t kQuantBlock = 256;

// bitsandbytes' create_dynamic_map(signed, max_exponent_bits=kBits-1, total_bits=kBits), sorted
// ascending: 8 bits for bitsandbytes' and torchao's 8-bit state, 4 for torchao's 4-bit first
// moment. Decade i (10^(i-kBits+2)) holds the midpoints of linspace(0.1, 1, k + 1): k = 2^i per
// sign when signed, 2^(i+1) when not (the sign bit becomes a fraction bit); then 0 and 1. In f32
// as torch computes it (bitsandbytes' and torchao's maps alike): linspace's points from the nearer
// end, each rounded once (its kernel's fused multiply-add), the midpoints halved, each times the
// decade in f32.
template <int kBits = 8>
std::array<float, 1 << kBits> dynamic_quant_map(bool is_signed) {
  std::array<float, 1 << kBits> map{};
  int n = 0;
  constexpr int kDecades = kBits - 1;
  for (int i = 0; i < kDecades; i++) {
    const int items = is_signed ? (1 << i) : (2 << i);
    const float scale = static_cast<float>(std::pow(10.0, i - (kDecades - 1)));
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

// torchao's 4-bit AdamW maps (Li et al. 2023, "Memory Efficient Optimizers with 4-bit States"):
// the first moment on the signed dynamic map; the second on 16 linear steps without zero (1/16 to
// 1), since a second moment rounded to zero would turn its element's update into lr / eps.
inline std::array<float, 16> torchao_4bit_map(bool is_signed) {
  if (is_signed) return dynamic_quant_map<4>(true);
  std::array<float, 16> map{};
  for (int k = 0; k < 16; k++) map[k] = static_cast<float>(k + 1) / 16.0f;  // exact, as linspace(0, 1, 17)[1:]
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

// torchao's code of x (scaled into [-1, 1]) in a sorted map of kEntries: the last entry at or
// below x (the first when none is), or the next one when x is at least halfway to it (ties up), as
// torchao.optim's quantize_8bit_with_qmap and quantize_4bit_with_qmap.
template <int kEntries = 256>
LLM_HOST_DEVICE uint8_t quantize_torchao(const float* map, float x) {
  int lo = 0;
  for (int step = kEntries / 2; step > 0; step >>= 1) lo += x >= map[lo + step] ? step : 0;
  if (lo == kEntries - 1) return static_cast<uint8_t>(lo);
  return static_cast<uint8_t>(x - map[lo] >= (map[lo + 1] - map[lo]) * 0.5f ? lo + 1 : lo);
}

// Code i of a quantised moment kBits wide: one a byte, or two a byte (4 bits, as torchao packs
// them: the even element in the high nibble).
template <int kBits>
LLM_HOST_DEVICE int read_code(const uint8_t* codes, int64_t i) {
  if constexpr (kBits == 8) {
    return codes[i];
  } else {
    static_assert(kBits == 4, "codes are 8 or 4 bits");
    return (codes[i >> 1] >> ((i & 1) ? 0 : 4)) & 0xF;
  }
}

// How a block of moments becomes codes, for the blockwise update loops (CPU and CUDA): kBits a
// code, `map` the 2^kBits values of a signed or unsigned moment's codes, `prepare` turns the
// block's largest magnitude into what `code` takes, `stored` into the absmax kept beside the codes.
// bitsandbytes': scaled by 1 / absmax (a block of zeros keeps absmax 0), a first moment's sign kept.
struct BnbBlockQuant {
  static constexpr int kBits = 8;
  static std::array<float, 256> map(bool is_signed) { return dynamic_quant_map(is_signed); }
  LLM_HOST_DEVICE static float prepare(float block_max) { return block_max > 0.0f ? 1.0f / block_max : 0.0f; }
  LLM_HOST_DEVICE static float stored(float block_max) { return block_max; }
  LLM_HOST_DEVICE static uint8_t code(const float* map, float x, float inv, bool is_signed) {
    return quantize_moment(map, x * inv, is_signed);
  }
};
// torchao's (torchao.optim's OptimState8bit and OptimState4bit): divided by the absmax clipped to
// 1e-12, which is also what it keeps; the nearest code, ties up, no sign kept.
template <int kCodeBits = 8>
struct TorchaoBlockQuant {
  static constexpr int kBits = kCodeBits;
  static std::array<float, 1 << kBits> map(bool is_signed) {
    if constexpr (kBits == 8) return dynamic_quant_map(is_signed);
    else return torchao_4bit_map(is_signed);
  }
  LLM_HOST_DEVICE static float prepare(float block_max) { return fmaxf(block_max, 1e-12f); }
  LLM_HOST_DEVICE static float stored(float block_max) { return fmaxf(block_max, 1e-12f); }
  LLM_HOST_DEVICE static uint8_t code(const float* map, float x, float scale, bool /*is_signed*/) {
    return quantize_torchao<1 << kBits>(map, x / scale);
  }
};

// torchao's AdamWFp8 (OptimStateFp8): the code is the float8_e4m3fn byte of x / scale, rounded to
// nearest even, where scale is the block's absmax clipped to 1e-12 over 448 (e4m3's largest), which
// is also what it keeps; `map` holds every byte's value, so a code reads back as map[code] x scale
// as the other formats' do. The scale is a true f32 division by 448, not a product with its
// reciprocal (which differs in the last bit for about half of all values): torchao's scales, from
// its update compiled for the CPU, are the quotients bit for bit. On a GPU Triton's f32 division and
// inductor's rewrites may round otherwise; that comparison has not been run.
struct TorchaoFp8BlockQuant {
  static constexpr int kBits = 8;
  static std::array<float, 256> map(bool /*is_signed*/) {
    std::array<float, 256> values{};
    for (int byte = 0; byte < 256; byte++) values[byte] = e4m3_value(static_cast<uint8_t>(byte));
    return values;
  }
  LLM_HOST_DEVICE static float prepare(float block_max) { return fmaxf(block_max, 1e-12f) / 448.0f; }
  LLM_HOST_DEVICE static float stored(float block_max) { return prepare(block_max); }
  LLM_HOST_DEVICE static uint8_t code(const float* /*map*/, float x, float scale, bool /*is_signed*/) {
    return e4m3_byte(round_to_fp8(x / scale, fp8_spec(Fp8Format::e4m3)));
  }
};

}  // namespace llm
