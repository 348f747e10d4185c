// defines: int8_nbytes, int8_quantize (bitsandbytes' Int8Params quantisation, on the host),
// require_int8_weight
#include "engine/int8.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/check.h"

namespace llm {

size_t int8_nbytes(int64_t rows, int64_t cols) { return static_cast<size_t>(rows * cols + 4 * rows); }

namespace {
constexpr float kF16Max = 65504.0f;
}  // namespace

QuantWeight int8_quantize(const Tensor& w) {
  LLM_CHECK(w.defined() && w.dim() == 2 && (w.dtype() == DType::f32 || w.dtype() == DType::bf16),
            "int8_quantize takes an (out, in) f32 or bf16 matrix; got " + (w.defined() ? w.str() : "undefined"));
  const std::vector<float> x = w.to_floats();
  const int64_t rows = w.size(0), cols = w.size(1);
  std::vector<uint8_t> codes(x.size());
  std::vector<float> scb(rows);
  bool in_range = true;
#pragma omp parallel for if (x.size() > (size_t(1) << 16)) reduction(&& : in_range)
  for (int64_t r = 0; r < rows; r++) {
    const float* row = x.data() + r * cols;
    float amax = 0.0f;
    for (int64_t j = 0; j < cols; j++) {
      in_range = in_range && std::fabs(row[j]) <= kF16Max;
      amax = std::max(amax, std::fabs(round_to_f16(row[j])));
    }
    scb[r] = amax;
    // bnb's row_stats are f32 and torch evaluates its `127.0 / row_stats` as reciprocal(row_stats)
    // x 127: two f32 roundings (one division would differ in a quarter of the rows), then the
    // product, rounded by torch.round (ties to even). An all-zero row (bnb divides 0 by 0 there)
    // keeps codes 0 and SCB 0: it stays 0.
    const float inv = amax > 0.0f ? (1.0f / amax) * 127.0f : 0.0f;
    for (int64_t j = 0; j < cols; j++) {
      const float code = std::nearbyint(round_to_f16(row[j]) * inv);
      codes[r * cols + j] = static_cast<uint8_t>(static_cast<int8_t>(code));
    }
  }
  LLM_CHECK(in_range, "int8_quantize: a weight of " + w.str() + " exceeds fp16's range (65504), which "
                      "bitsandbytes casts it to before quantising to int8");
  QuantWeight q;
  q.format = QuantFormat::int8;
  q.shape = w.shape();
  q.codes = Tensor::empty({rows * cols}, DType::u8);
  std::copy(codes.begin(), codes.end(), q.codes.data<uint8_t>());
  q.codes = q.codes.to(w.device());
  q.absmax = Tensor::from_floats(scb, {rows}, w.device());
  return q;
}

void require_int8_weight(const QuantWeight& w) {
  LLM_CHECK(w.format == QuantFormat::int8 && w.shape.size() == 2, "int8: not an (out, in) int8 weight");
  LLM_CHECK(w.codes.dtype() == DType::u8 && w.codes.numel() == w.numel(),
            "int8: codes " + w.codes.str() + " for a weight of " + shape_str(w.shape));
  LLM_CHECK(w.absmax.dtype() == DType::f32 && w.absmax.numel() == w.shape[0],
            "int8: row scales " + w.absmax.str() + " for a weight of " + shape_str(w.shape));
}

}  // namespace llm
