// defines: CPU rmsnorm forward (saves 1/rms per row) and backward (dx, and dweight summed
// deterministically); add_rmsnorm, the same with the residual add before it fused in
#include <algorithm>
#include <cmath>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_simd_math.h"
#include "engine/op_timer.h"

namespace llm {

namespace {
// The row loops live in free functions so that LLM_CPU_CLONES builds them SIMD-wide; the row
// sums are dot_of's SIMD lanes (the same order whatever the thread count).
// One row: y = row * r * w; returns r = 1 / rms. Inlined into each caller's SIMD clone.
[[gnu::always_inline]] inline float normalize_row(const float* row, const float* w, float eps, int64_t C, float* y) {
  const float r = 1.0f / std::sqrt(dot_of(row, row, C) / C + eps);
  for (int64_t c = 0; c < C; c++) y[c] = row[c] * r * w[c];
  return r;
}

LLM_CPU_CLONES void forward_rows(const float* x, const float* w, float eps, int64_t N, int64_t C,
                                 float* y, float* rstd) {
#pragma omp parallel for if (N * C >= kMinParallelElements)
  for (int64_t i = 0; i < N; i++) rstd[i] = normalize_row(x + i * C, w, eps, C, y + i * C);
}

// h = x + r, then its norm while the row is in cache: one pass over memory, not two.
LLM_CPU_CLONES void add_forward_rows(const float* x, const float* res, const float* w, float eps,
                                     int64_t N, int64_t C, float* h, float* y, float* rstd) {
#pragma omp parallel for if (N * C >= kMinParallelElements)
  for (int64_t i = 0; i < N; i++) {
    float* row = h + i * C;
    for (int64_t c = 0; c < C; c++) row[c] = x[i * C + c] + res[i * C + c];
    rstd[i] = normalize_row(row, w, eps, C, y + i * C);
  }
}

// With xhat = x * r: dx = r * (dy*w - xhat * mean(dy*w*xhat)), plus dx_in when given (the fused
// residual's own gradient; not aliasing dx). The norm's part is rounded to f32 before the sum, as
// autograd's separate accumulation rounds it, so the fused gradient is the unfused one bit for bit
// (an FMA there would differ in the last bit, and recompute segments change what is fused).
LLM_CPU_CLONES void backward_rows(const float* x, const float* w, const float* rstd, const float* dy,
                                  const float* dx_in, int64_t N, int64_t C, float* dx) {
#pragma omp parallel for if (N * C >= kMinParallelElements)
  for (int64_t i = 0; i < N; i++) {
    const float* row = x + i * C;
    const float* drow = dy + i * C;
    const float r = rstd[i];
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int64_t c = 0; c < C; c++) dot += drow[c] * w[c] * row[c];
    const float k = r * r * dot / C;
    float* out = dx + i * C;
    for (int64_t c = 0; c < C; c++) out[c] = r * (drow[c] * w[c] - row[c] * k);
    if (dx_in)  // a second pass over the row (in cache): the stores above round the norm's part
      for (int64_t c = 0; c < C; c++) out[c] += dx_in[i * C + c];
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
  OpTimer timer("rmsnorm_backward");
  const int64_t C = x.size(-1), N = x.numel() / C;
  backward_rows(x.data<float>(), w.data<float>(), rstd.data<float>(), dy.data<float>(), nullptr, N,
                C, dx.data<float>());
  weight_grad(x.data<float>(), rstd.data<float>(), dy.data<float>(), N, C, dw.data<float>());
}

void CpuBackend::add_rmsnorm_forward(const Tensor& x, const Tensor& r, const Tensor& w, float eps,
                                     Tensor& h, Tensor& y, Tensor& rstd) {
  require_f32("add_rmsnorm", x);
  OpTimer timer("add_rmsnorm");
  const int64_t C = x.size(-1);
  add_forward_rows(x.data<float>(), r.data<float>(), w.data<float>(), eps, x.numel() / C, C,
                   h.data<float>(), y.data<float>(), rstd.data<float>());
}

void CpuBackend::add_rmsnorm_backward(const Tensor& h, const Tensor& w, const Tensor& rstd,
                                      const Tensor& dy, const Tensor& dh_in, Tensor& dh,
                                      Tensor& dw) {
  require_f32("add_rmsnorm_backward", h);
  OpTimer timer("add_rmsnorm_backward");
  const int64_t C = h.size(-1), N = h.numel() / C;
  backward_rows(h.data<float>(), w.data<float>(), rstd.data<float>(), dy.data<float>(),
                dh_in.data<float>(), N, C, dh.data<float>());
  weight_grad(h.data<float>(), rstd.data<float>(), dy.data<float>(), N, C, dw.data<float>());
}

}  // namespace llm
