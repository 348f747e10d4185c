// defines: CPU rmsnorm forward (saves 1/rms per row) and backward (dx, and dweight summed
// deterministically)
#include <algorithm>
#include <cmath>

#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y,
                                 Tensor& rstd) {
  require_f32("rmsnorm", x);
  OpTimer timer("rmsnorm");
  const int64_t C = x.size(-1), N = x.numel() / C;
  const float* px = x.data<float>();
  const float* pw = w.data<float>();
  float* py = y.data<float>();
  float* pr = rstd.data<float>();
#pragma omp parallel for
  for (int64_t i = 0; i < N; i++) {
    const float* row = px + i * C;
    float ss = 0.0f;
    for (int64_t c = 0; c < C; c++) ss += row[c] * row[c];
    float r = 1.0f / std::sqrt(ss / C + eps);
    pr[i] = r;
    for (int64_t c = 0; c < C; c++) py[i * C + c] = row[c] * r * pw[c];
  }
}

// With xhat = x * r: dx = r * (dy*w - xhat * mean(dy*w*xhat)), dw = sum over rows of dy*xhat.
void CpuBackend::rmsnorm_backward(const Tensor& x, const Tensor& w, const Tensor& rstd,
                                  const Tensor& dy, Tensor& dx, Tensor& dw) {
  require_f32("rmsnorm_backward", x);
  OpTimer timer("rmsnorm");
  const int64_t C = x.size(-1), N = x.numel() / C;
  const float* px = x.data<float>();
  const float* pw = w.data<float>();
  const float* pr = rstd.data<float>();
  const float* pdy = dy.data<float>();
  float* pdx = dx.data<float>();
#pragma omp parallel for
  for (int64_t i = 0; i < N; i++) {
    const float* row = px + i * C;
    const float* drow = pdy + i * C;
    float dot = 0.0f;
    for (int64_t c = 0; c < C; c++) dot += drow[c] * pw[c] * row[c] * pr[i];
    dot /= C;
    for (int64_t c = 0; c < C; c++)
      pdx[i * C + c] = pr[i] * (drow[c] * pw[c] - row[c] * pr[i] * dot);
  }
  // Slices of channels in parallel, rows in order inside each: every dw[c] is the same sum in the
  // same order whatever the thread count, and memory is read along rows, not down columns.
  float* pdw = dw.data<float>();
  std::fill_n(pdw, C, 0.0f);
  constexpr int64_t kSlice = 64;
#pragma omp parallel for
  for (int64_t c0 = 0; c0 < C; c0 += kSlice) {
    const int64_t c1 = std::min(C, c0 + kSlice);
    for (int64_t i = 0; i < N; i++)
      for (int64_t c = c0; c < c1; c++) pdw[c] += pdy[i * C + c] * px[i * C + c] * pr[i];
  }
}

}  // namespace llm
