// defines: nf4_nbytes, nf4_quantize (bitsandbytes' quantize_4bit, nf4, with or without double quantisation,
// on the host), require_nf4_weight
#include "engine/nf4.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/check.h"
#include "engine/quant_map.h"

namespace llm {

size_t nf4_nbytes(int64_t n, bool double_quant) {
  const size_t blocks = static_cast<size_t>((n + kNf4Block - 1) / kNf4Block);
  const size_t scales = (blocks + kNf4AbsmaxBlock - 1) / kNf4AbsmaxBlock;
  const size_t absmax = double_quant ? blocks + 4 * scales + 4 : 4 * blocks;
  return static_cast<size_t>((n + 1) / 2) + absmax;
}

namespace {

// bnb's default quantize_4bit: absmax per block, x * (1 / absmax) clamped to [-1, 1] (an all-zero
// block keeps absmax 0 and codes of 0), codes packed high nibble first.
void quantize_blocks(const std::vector<float>& x, std::vector<uint8_t>& codes, std::vector<float>& absmax) {
  const int64_t n = static_cast<int64_t>(x.size()), blocks = static_cast<int64_t>(absmax.size());
  std::fill(codes.begin(), codes.end(), 0);
#pragma omp parallel for if (n > (int64_t(1) << 16))
  for (int64_t b = 0; b < blocks; b++) {
    const int64_t lo = b * kNf4Block, hi = std::min(n, lo + kNf4Block);
    float amax = 0.0f;
    for (int64_t i = lo; i < hi; i++) amax = std::max(amax, std::fabs(x[i]));
    absmax[b] = amax;
    const float inv = 1.0f / std::max(amax, 1e-38f);
    for (int64_t i = lo; i < hi; i++) {
      const uint8_t c = nf4_code_of(std::clamp(x[i] * inv, -1.0f, 1.0f));
      codes[i / 2] |= i % 2 == 0 ? static_cast<uint8_t>(c << 4) : c;  // blocks hold whole bytes
    }
  }
  if (n % 2) codes.back() |= nf4_code_of(0.0f);  // bnb pads an odd count with a scaled 0
}

// bitsandbytes 0.50's CPU quantize_blockwise: the nearest map entry to x in [-1, 1], read from a
// table of the nearest entries to 65536 points spread evenly over [-1, 1]. Its CUDA kernel
// searches the map itself instead; the two differ only where x lies within a table step (2/65535)
// of a midpoint between two entries, e.g. in the smallest decades of the map.
uint8_t dynamic_code_of(float x) {
  static const std::vector<uint8_t> table = [] {
    const QuantMap<256> map = make_quant_map(dynamic_quant_map(true));
    std::vector<uint8_t> t(65536);
    for (int j = 0; j < 65536; j++) t[j] = quantize_nearest(map, static_cast<float>(j / 65535.0 * 2.0 - 1.0));
    return t;
  }();
  const float clamped = x > -1.0f ? std::min(x, 1.0f) : -1.0f;  // a NaN becomes -1, not an index
  return table[static_cast<int>((clamped + 1.0f) * 0.5f * 65535.0f + 0.5f)];
}

// bnb's double quantisation: quantize_blockwise(absmax - mean, blocksize=256) with the signed
// dynamic map, each value divided by its block's absmax.
void quantize_absmax(const std::vector<float>& absmax, QuantWeight& w, Device device) {
  const int64_t n = static_cast<int64_t>(absmax.size());
  const int64_t blocks = (n + kNf4AbsmaxBlock - 1) / kNf4AbsmaxBlock;
  double sum = 0.0;
  for (float a : absmax) sum += a;
  w.absmax_offset = static_cast<float>(sum / static_cast<double>(n));
  std::vector<uint8_t> codes(n);
  std::vector<float> scale(blocks);
  for (int64_t b = 0; b < blocks; b++) {
    const int64_t lo = b * kNf4AbsmaxBlock, hi = std::min(n, lo + kNf4AbsmaxBlock);
    float amax = 0.0f;
    for (int64_t i = lo; i < hi; i++) amax = std::max(amax, std::fabs(absmax[i] - w.absmax_offset));
    scale[b] = amax;
    for (int64_t i = lo; i < hi; i++)
      codes[i] = dynamic_code_of(amax > 0.0f ? (absmax[i] - w.absmax_offset) / amax : 0.0f);
  }
  w.absmax = Tensor::empty({n}, DType::u8);
  std::copy(codes.begin(), codes.end(), w.absmax.data<uint8_t>());
  w.absmax = w.absmax.to(device);
  w.absmax_scale = Tensor::from_floats(scale, {blocks}, device);
}

}  // namespace

QuantWeight nf4_quantize(const Tensor& w, bool double_quant) {
  LLM_CHECK(w.defined() && (w.dtype() == DType::f32 || w.dtype() == DType::bf16),
            "nf4_quantize takes an f32 or bf16 tensor; got " + (w.defined() ? w.str() : "undefined"));
  const std::vector<float> x = w.to_floats();
  QuantWeight q;
  q.format = QuantFormat::nf4;
  q.shape = w.shape();
  std::vector<uint8_t> codes((x.size() + 1) / 2);
  std::vector<float> absmax(q.blocks());
  quantize_blocks(x, codes, absmax);
  q.codes = Tensor::empty({static_cast<int64_t>(codes.size())}, DType::u8);
  std::copy(codes.begin(), codes.end(), q.codes.data<uint8_t>());
  q.codes = q.codes.to(w.device());
  if (double_quant) quantize_absmax(absmax, q, w.device());
  else q.absmax = Tensor::from_floats(absmax, {q.blocks()}, w.device());
  return q;
}

void require_nf4_weight(const QuantWeight& w) {
  LLM_CHECK(w.format == QuantFormat::nf4, "nf4: not an NF4 weight");
  const int64_t blocks = w.blocks();
  LLM_CHECK(w.codes.dtype() == DType::u8 && w.codes.numel() == (w.numel() + 1) / 2,
            "nf4: codes " + w.codes.str() + " for a weight of " + shape_str(w.shape));
  LLM_CHECK(w.absmax.numel() == blocks && w.absmax.dtype() == (w.double_quant() ? DType::u8 : DType::f32),
            "nf4: absmax " + w.absmax.str() + " for " + std::to_string(blocks) + " blocks");
  LLM_CHECK(!w.double_quant() || (w.absmax_scale.dtype() == DType::f32 &&
                                  w.absmax_scale.numel() == (blocks + kNf4AbsmaxBlock - 1) / kNf4AbsmaxBlock),
            "nf4: absmax scales " + w.absmax_scale.str() + " for " + std::to_string(blocks) + " blocks");
}

}  // namespace llm
