// defines: CPU embedding, rmsnorm and rope kernels (forward and backward)
#include <algorithm>
#include <cmath>

#include "engine/check.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) {
  require_f32("embedding", table);
  OpTimer timer("embedding");
  const int32_t* id = ids.data<int32_t>();
  const int64_t n = ids.numel(), vocab = table.size(0), C = table.size(1);
  for (int64_t i = 0; i < n; i++)
    LLM_CHECK(id[i] >= 0 && id[i] < vocab, "embedding: token id " + std::to_string(id[i]) +
                                               " outside the vocabulary of " + std::to_string(vocab));
#pragma omp parallel for
  for (int64_t i = 0; i < n; i++)
    std::copy_n(table.data<float>() + id[i] * C, C, out.data<float>() + i * C);
}

// Deterministic: each thread owns a slice of the channels and adds tokens in order.
void CpuBackend::embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  require_f32("embedding_backward", dout);
  OpTimer timer("embedding");
  const int32_t* id = ids.data<int32_t>();
  const int64_t n = ids.numel(), C = dtable.size(1);
  const float* d = dout.data<float>();
  float* dt = dtable.data<float>();
#pragma omp parallel for
  for (int64_t c = 0; c < C; c++)
    for (int64_t i = 0; i < n; i++) dt[id[i] * C + c] += d[i * C + c];
}

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
  float* pdw = dw.data<float>();  // channels in parallel, rows in order: deterministic
#pragma omp parallel for
  for (int64_t c = 0; c < C; c++) {
    float acc = 0.0f;
    for (int64_t i = 0; i < N; i++) acc += pdy[i * C + c] * px[i * C + c] * pr[i];
    pdw[c] = acc;
  }
}

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
