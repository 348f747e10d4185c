// defines: CPU rope (HF rotate_half rotation, forward or inverse; its own backward)
#include <cmath>

#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"

namespace llm {

// HF rotate_half: the pair (x[i], x[i + D/2]) turns by angle pos * inv_freq[i].
void CpuBackend::rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
                      bool inverse, Tensor& y) {
  require_f32("rope", x);
  OpTimer timer("rope");
  const int64_t B = x.size(0), S = x.size(1), H = x.size(2), D = x.size(3), half = D / 2;
  const int32_t* pos = positions.data<int32_t>();
  const float* freq = inv_freq.data<float>();
  const float* px = x.data<float>();
  float* py = y.data<float>();
  const float sign = inverse ? -1.0f : 1.0f;
#pragma omp parallel for
  for (int64_t bs = 0; bs < B * S; bs++) {
    for (int64_t i = 0; i < half; i++) {
      float angle = static_cast<float>(pos[bs]) * freq[i];
      float c = std::cos(angle), s = sign * std::sin(angle);
      for (int64_t h = 0; h < H; h++) {
        const float* in = px + (bs * H + h) * D;
        float* out = py + (bs * H + h) * D;
        float x0 = in[i], x1 = in[i + half];
        out[i] = x0 * c - x1 * s;
        out[i + half] = x1 * c + x0 * s;
      }
    }
  }
}

}  // namespace llm
