// defines: CPU rmsnorm forward (saves 1/rms per row) and backward (dx, and dweight summed
// deterministically)
#include <algorithm>
#include <cmath>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_simd_math.h"
#include "engine/op_timer.h"

namespace llm {

namespace {
// The row loops live in free functions so that LLM_CPU_CLONES builds them SIMD-wide; the row
// sums are dot_of's SIMD lanes (the same order whatever the thread count).
LLM_CPU_CLONES void forward_rows(const float* x, const float* w, float eps, int64_t N, int64_t C,
                                 float* y, float* rstd) {
#pragma omp parallel for if (N * C >= kMinParallelElements)
  for (int64_t i = 0; i < N; i++) {
    const float* row = x + i * C;
    const float r = 1.0f / std::sqrt(dot_of(row, row, C) / C + eps);
    rstd[i] = r;
    for (int64_t c = 0; c < C; c++) y[i * C + c] = row[c] * r * w[c];
  }
}

// With xhat = x * r: dx = r * (dy*w - xhat * mean(dy*w*xhat)).
LLM_CPU_CLONES void backward_rows(const float* x, const float* w, const float* rstd, const float* dy,
                                  int64_t N, int64_t C, float* dx) {
#pragma omp parallel for if (N * C >= kMinParallelElements)
  for (int64_t i = 0; i < N; i++) {
    const float* row = x + i * C;
    const float* drow = dy + i * C;
    const float r = rstd[i];
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int64_t c = 0; c < C; c++) dot += drow[c] * w[c] * row[c];
    const float k = r * r * dot / C;
    for (int64_t c = 0; c < C; c++) dx[i * C + c] = r * (drow[c] * w[c] - row[c] * k);
  }
}

// dw = sum over rows of dy*xhat: slices of channels in parallel, rows in order inside each, so
// every dw[c] is the same sum in the same order whatever the thread count, and memory is read
// along rows, not down columns.
LLM_CPU_CLONES void weight_grad(const float* x, const float* rstd, const float* dy, int64_t N,
                                int64_t C, float* dw) {
  std::fill_n(dw, C, 0.0f);
  constexpr int64_t kSlice = 64;
#pragma omp parallel for if (N * C >= kMinParallelElements)
  for (int64_t c0 = 0; c0 < C; c0 += kSlice) {
    const int64_t c1 = std::min(C, c0 + kSlice);
    for (int64_t i = 0; i < N; i++)
      for (int64_t c = c0; c < c1; c++) dw[c] += dy[i * C + c] * x[i * C + c] * rstd[i];
  }
}
}  // namespace

void CpuBackend::rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y,
                                 Tensor& rstd) {
  require_f32("rmsnorm", x);
  OpTimer timer("rmsnorm");
  const int64_t C = x.size(-1);
  forward_rows(x.data<float>(), w.data<float>(), eps, x.numel() / C, C, y.data<float>(),
               rstd.data<float>());
}

void CpuBackend::rmsnorm_backward(const Tensor& x, const Tensor& w, const Tensor& rstd,
                                  const Tensor& dy, Tensor& dx, Tensor& dw) {
  require_f32("rmsnorm_backward", x);
  OpTimer timer("rmsnorm");
  const int64_t C = x.size(-1), N = x.numel() / C;
  backward_rows(x.data<float>(), w.data<float>(), rstd.data<float>(), dy.data<float>(), N, C,
                dx.data<float>());
  weight_grad(x.data<float>(), rstd.data<float>(), dy.data<float>(), N, C, dw.data<float>());
}

}  // namespace llm
