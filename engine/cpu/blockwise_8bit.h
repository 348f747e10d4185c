// bitsandbytes' blockwise 8-bit optimizer state on the CPU, for any update rule (and torchao's,
// 8 or 4 bits a code): the reference for cuda/blockwise_8bit.cuh. Used by cpu_adamw_8bit.cpp,
// cpu_lion.cpp, cpu_ademamix.cpp and cpu_torchao_adamw.cpp.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>

#include "engine/cpu/cpu_backend.h"
#include "engine/quant_map.h"

namespace llm {

// One quantised moment: codes into a map (signed for a first moment, unsigned for a second) times
// an f32 absmax per kQuantBlock elements.
struct QuantMoment {
  Tensor* codes;
  Tensor* absmax;
  bool is_signed;
};

// One update of f32 `param` from `grad` (f32): each block's moments dequantised, `update(p, g,
// moments)` (which returns the new p and moves the kMoments moments) for each element, then the
// moments requantised against the block's new absmax (BlockQuant: bitsandbytes' quantize_moment,
// absmax 0 for a block of zeros, every code then dequantising to 0; or torchao's, whose 4-bit
// codes pack two a byte).
template <size_t kMoments, class BlockQuant = BnbBlockQuant, class Update>
void update_blockwise_8bit(const char* op, Tensor& param, const Tensor& grad,
                           const std::array<QuantMoment, kMoments>& moments, Update update) {
  require_f32(op, param);
  require_f32(op, grad);
  constexpr int kBits = BlockQuant::kBits;
  using Map = QuantMap<1 << kBits>;
  static const Map signed_map = BlockQuant::table(true), unsigned_map = BlockQuant::table(false);
  std::array<const Map*, kMoments> map;
  std::array<bool, kMoments> is_signed;
  std::array<uint8_t*, kMoments> codes;
  std::array<float*, kMoments> absmax;
  for (size_t k = 0; k < kMoments; k++) {
    require_quantised_moment(op, param, *moments[k].codes, *moments[k].absmax, kBits);
    is_signed[k] = moments[k].is_signed;
    map[k] = is_signed[k] ? &signed_map : &unsigned_map;
    codes[k] = moments[k].codes->template data<uint8_t>();
    absmax[k] = moments[k].absmax->template data<float>();
  }
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  const int64_t n = param.numel(), blocks = (n + kQuantBlock - 1) / kQuantBlock;
#pragma omp parallel for
  for (int64_t b = 0; b < blocks; b++) {
    const int64_t lo = b * kQuantBlock, len = std::min(kQuantBlock, n - lo);
    float values[kMoments][kQuantBlock];
    float block_max[kMoments] = {};
    for (int64_t j = 0; j < len; j++) {
      float m[kMoments];
      for (size_t k = 0; k < kMoments; k++) m[k] = map[k]->value[read_code<kBits>(codes[k], lo + j)] * absmax[k][b];
      p[lo + j] = update(p[lo + j], g[lo + j], m);
      for (size_t k = 0; k < kMoments; k++) {
        values[k][j] = m[k];
        block_max[k] = std::max(block_max[k], std::fabs(m[k]));
      }
    }
    for (size_t k = 0; k < kMoments; k++) {
      const float scale = BlockQuant::prepare(block_max[k]);
      for (int64_t j = 0; j < len; j++) {
        const uint8_t code = BlockQuant::code(*map[k], values[k][j], scale, is_signed[k]);
        if constexpr (kBits == 8) {
          codes[k][lo + j] = code;
        } else {  // the pair's byte, each half in turn (a block holds whole pairs)
          uint8_t& byte = codes[k][(lo + j) >> 1];
          byte = ((lo + j) & 1) ? uint8_t((byte & 0xF0) | code) : uint8_t((byte & 0x0F) | (code << 4));
        }
      }
      absmax[k][b] = BlockQuant::stored(block_max[k]);
    }
  }
}

}  // namespace llm
