// defines: CPU rope (HF rotate_half rotation, forward or inverse; its own backward), ssmax_scale
// (SSMax's per-query factor from the same positions)
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_simd_math.h"
#include "engine/op_timer.h"

namespace llm {

namespace {
// The rows of one token: the pair (x[i], x[i + half]) of each of its H heads turns by the angle
// whose cosine and sine are c[i], s[i]. Contiguous in i, so the rotation is SIMD.
LLM_CPU_CLONES void rotate_token(const float* x, const float* c, const float* s, int64_t H,
                                 int64_t half, float* y) {
  for (int64_t h = 0; h < H; h++) {
    const float* in = x + h * 2 * half;
    float* out = y + h * 2 * half;
    for (int64_t i = 0; i < half; i++) {
      const float x0 = in[i], x1 = in[i + half];
      out[i] = x0 * c[i] - x1 * s[i];
      out[i + half] = x1 * c[i] + x0 * s[i];
    }
  }
}
}  // namespace

// cos and sin are the costly part (a library call each), and a batch's rows repeat the same
// positions: the angles of positions 0..max are tabled once per call (when there are no more of
// them than tokens), then every head of every token is rotated from the table.
void CpuBackend::rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
                      bool inverse, Tensor& y) {
  require_f32("rope", x);
  OpTimer timer("rope");
  const int64_t B = x.size(0), S = x.size(1), H = x.size(2), D = x.size(3), half = D / 2;
  const int64_t tokens = B * S;
  const int32_t* pos = positions.data<int32_t>();
  const float* freq = inv_freq.data<float>();
  const float sign = inverse ? -1.0f : 1.0f;
  const auto [lo, hi] = std::minmax_element(pos, pos + tokens);
  const bool tabled = tokens > 0 && *lo >= 0 && *hi < tokens;
  // Row t of the table: position t's cosines, then its signed sines; untabled, one row per token.
  const int64_t rows = tabled ? *hi + 1 : tokens;
  std::vector<float> table(rows * D);
  const bool parallel = tokens * H * D >= kMinParallelElements;
#pragma omp parallel for if (parallel)
  for (int64_t t = 0; t < rows; t++)
    for (int64_t i = 0; i < half; i++) {
      const float angle = static_cast<float>(tabled ? t : pos[t]) * freq[i];
      table[t * D + i] = std::cos(angle);
      table[t * D + half + i] = sign * std::sin(angle);
    }
#pragma omp parallel for if (parallel)
  for (int64_t t = 0; t < tokens; t++) {
    const float* cs = table.data() + (tabled ? pos[t] : t) * D;
    rotate_token(x.data<float>() + t * H * D, cs, cs + half, H, half, y.data<float>() + t * H * D);
  }
}

void CpuBackend::ssmax_scale(const Tensor& positions, float s, float b, Tensor& out) {
  LLM_CHECK(positions.dtype() == DType::i32 && out.dtype() == DType::f32 && out.numel() == positions.numel(),
            "ssmax_scale: positions " + positions.str() + " must be i32 and out " + out.str() + " f32 of as many");
  const int32_t* pos = positions.data<int32_t>();
  float* f = out.data<float>();
  for (int64_t t = 0; t < positions.numel(); t++)
    f[t] = s * std::log(std::max(static_cast<float>(pos[t]) + 1.0f, 2.0f)) + b;
}

}  // namespace llm
