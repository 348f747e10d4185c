// bitsandbytes' dynamic 8-bit quantisation (Dettmers et al., "8-bit Optimizers via Block-wise
// Quantization"): 256 values spread log-uniformly over seven decades of [-1, 1] (signed) or
// [0, 1] (unsigned), and blockwise absmax scaling; torchao's 4-bit maps and its float8 codes beside
// them. Written once for the CPU and CUDA kernels.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "engine/check.h"
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

// A sorted map with a guide that finds where x falls in it without a binary search, which in
// shared memory costs eight dependent loads a value, most of them 8-way bank conflicts (a warp's
// lanes meet at the same power-of-two strides). Floats are cut into buckets in value order by sign,
// exponent (2^-22 up to 2^0; the rest clamped into the end buckets) and the top 6 mantissa bits; the
// guide holds, for each bucket, the last entry below it. No bucket of these maps holds more than
// kGuideSteps entries (make_quant_map checks), so the last entry at or below x is at most that many
// steps past its bucket's start: one byte load and two compares, with the search's answer for
// every float (test_quant_map compares them over the float line, NaN and infinities included).
constexpr int kGuideMantissaBits = 6;
constexpr uint32_t kGuideMinExponent = 105;  // biased: 2^-22, below every nonzero entry (3.25e-7)
constexpr int kGuideMagnitudes = static_cast<int>(127 - kGuideMinExponent + 1) << kGuideMantissaBits;
constexpr int kGuideBuckets = 2 * kGuideMagnitudes;
constexpr int kGuideSteps = 2;

// x's bucket, never decreasing as x grows: -0 shares +0's bucket (they compare equal), a NaN takes
// the first (every compare with it is false, so the search stops at entry 0 as a binary one does).
LLM_HOST_DEVICE int guide_bucket(float x) {
  uint32_t bits;
  memcpy(&bits, &x, sizeof(bits));
  constexpr uint32_t kLowest = kGuideMinExponent << 23, kHighest = (128u << 23) - 1;  // 2^-22, below 2
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  const bool below = bits > 0x80000000u || magnitude > 0x7F800000u;  // negative and not -0, or NaN
  const uint32_t clamped = magnitude < kLowest ? kLowest : (magnitude > kHighest ? kHighest : magnitude);
  const int m = static_cast<int>((clamped - kLowest) >> (23 - kGuideMantissaBits));
  return below ? kGuideMagnitudes - 1 - m : kGuideMagnitudes + m;
}

template <int kEntries>
struct QuantMap {
  float value[kEntries + 1];     // ascending, then a NaN past the end that no step moves onto
  uint8_t start[kGuideBuckets];  // the last entry in an earlier bucket (0 where none is)

  // The last entry at or below x, or 0 where none is.
  LLM_HOST_DEVICE int last_at_or_below(float x) const {
    int lo = start[guide_bucket(x)];
    for (int s = 0; s < kGuideSteps; s++) lo += value[lo + 1] <= x ? 1 : 0;
    return lo;
  }
};

// `values` (strictly ascending) with their guide.
template <size_t kEntries>
QuantMap<static_cast<int>(kEntries)> make_quant_map(const std::array<float, kEntries>& values) {
  static_assert(kEntries <= 256, "a bucket's start is a byte");
  QuantMap<static_cast<int>(kEntries)> map{};
  std::copy(values.begin(), values.end(), map.value);
  map.value[kEntries] = NAN;
  for (size_t e = 1; e < kEntries; e++) LLM_CHECK(values[e - 1] < values[e], "make_quant_map: values not ascending");
  size_t next = 0;  // the first entry not in an earlier bucket
  for (int b = 0; b < kGuideBuckets; b++) {
    map.start[b] = static_cast<uint8_t>(next > 0 ? next - 1 : 0);
    const size_t first = next;
    while (next < kEntries && guide_bucket(values[next]) == b) next++;
    LLM_CHECK(next - first <= kGuideSteps, "make_quant_map: a guide bucket holds more than kGuideSteps entries");
  }
  LLM_CHECK(next == kEntries, "make_quant_map: an entry in no guide bucket");  // as guide_bucket rises with x
  return map;
}

// The code of the map entry nearest to x (ties to the lower one).
template <int kEntries>
LLM_HOST_DEVICE uint8_t quantize_nearest(const QuantMap<kEntries>& map, float x) {
  const float* v = map.value;
  if (!(x > v[0])) return 0;
  if (x >= v[kEntries - 1]) return kEntries - 1;
  const int lo = map.last_at_or_below(x);  // v[lo] <= x < v[lo + 1]
  return static_cast<uint8_t>(x - v[lo] <= v[lo + 1] - x ? lo : lo + 1);
}

// The code of a moment's value x (scaled by its block's absmax) in an 8-bit optimizer's state:
// the nearest entry, except that a signed map keeps x's sign as bitsandbytes' kernels do (a
// negative first moment whose nearest entry is 0 takes the negative one beside it), so a small
// momentum is not lost to 0 while its sign still steers updates (Lion's).
LLM_HOST_DEVICE uint8_t quantize_moment(const QuantMap<256>& map, float x, bool is_signed) {
  const uint8_t code = quantize_nearest(map, x);
  const bool negative = copysignf(1.0f, x) < 0.0f, code_negative = copysignf(1.0f, map.value[code]) < 0.0f;
  if (is_signed && negative != code_negative) return x > 0.0f ? code + 1 : code - 1;
  return code;
}

// torchao's code of x (scaled into [-1, 1]) in a sorted map of kEntries: the last entry at or
// below x (the first when none is), or the next one when x is at least halfway to it (ties up), as
// torchao.optim's quantize_8bit_with_qmap and quantize_4bit_with_qmap.
template <int kEntries>
LLM_HOST_DEVICE uint8_t quantize_torchao(const QuantMap<kEntries>& map, float x) {
  const float* v = map.value;
  const int lo = map.last_at_or_below(x);
  if (lo == kEntries - 1) return static_cast<uint8_t>(lo);
  return static_cast<uint8_t>(x - v[lo] >= (v[lo + 1] - v[lo]) * 0.5f ? lo + 1 : lo);
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
// code, `table` the map of a signed or unsigned moment's 2^kBits codes, `prepare` turns the
// block's largest magnitude into what `code` takes, `stored` into the absmax kept beside the codes.
// bitsandbytes': scaled by 1 / absmax (a block of zeros keeps absmax 0), a first moment's sign kept.
struct BnbBlockQuant {
  static constexpr int kBits = 8;
  static QuantMap<256> table(bool is_signed) { return make_quant_map(dynamic_quant_map(is_signed)); }
  LLM_HOST_DEVICE static float prepare(float block_max) { return block_max > 0.0f ? 1.0f / block_max : 0.0f; }
  LLM_HOST_DEVICE static float stored(float block_max) { return block_max; }
  LLM_HOST_DEVICE static uint8_t code(const QuantMap<256>& map, float x, float inv, bool is_signed) {
    return quantize_moment(map, x * inv, is_signed);
  }
};
// torchao's (torchao.optim's OptimState8bit and OptimState4bit): divided by the absmax clipped to
// 1e-12, which is also what it keeps; the nearest code, ties up, no sign kept.
template <int kCodeBits = 8>
struct TorchaoBlockQuant {
  static constexpr int kBits = kCodeBits;
  static QuantMap<1 << kBits> table(bool is_signed) {
    if constexpr (kBits == 8) return make_quant_map(dynamic_quant_map(is_signed));
    else return make_quant_map(torchao_4bit_map(is_signed));
  }
  LLM_HOST_DEVICE static float prepare(float block_max) { return fmaxf(block_max, 1e-12f); }
  LLM_HOST_DEVICE static float stored(float block_max) { return fmaxf(block_max, 1e-12f); }
  LLM_HOST_DEVICE static uint8_t code(const QuantMap<1 << kBits>& map, float x, float scale, bool /*is_signed*/) {
    return quantize_torchao(map, x / scale);
  }
};

// torchao's AdamWFp8 (OptimStateFp8): the code is the float8_e4m3fn byte of x / scale, rounded to
// nearest even, where scale is the block's absmax clipped to 1e-12 over 448 (e4m3's largest), which
// is also what it keeps; `table` holds every byte's value (in byte order: code() computes its byte,
// so the table has no guide), so a code reads back as value[code] x scale as the other formats' do. The scale is a true f32 division by 448, not a product with its
// reciprocal (which differs in the last bit for about half of all values): torchao's scales, from
// its update compiled for the CPU, are the quotients bit for bit. On a GPU Triton's f32 division and
// inductor's rewrites may round otherwise; that comparison has not been run.
struct TorchaoFp8BlockQuant {
  static constexpr int kBits = 8;
  static QuantMap<256> table(bool /*is_signed*/) {
    QuantMap<256> map{};
    for (int byte = 0; byte < 256; byte++) map.value[byte] = e4m3_value(static_cast<uint8_t>(byte));
    map.value[256] = NAN;
    return map;
  }
  LLM_HOST_DEVICE static float prepare(float block_max) { return fmaxf(block_max, 1e-12f) / 448.0f; }
  LLM_HOST_DEVICE static float stored(float block_max) { return prepare(block_max); }
  LLM_HOST_DEVICE static uint8_t code(const QuantMap<256>& /*map*/, float x, float scale, bool /*is_signed*/) {
    return e4m3_byte(round_to_fp8(x / scale, fp8_spec(Fp8Format::e4m3)));
  }
};

}  // namespace llm
