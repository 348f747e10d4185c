// defines: CPU eager attention (scores materialised per head; GEMMs through OpenBLAS)
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"

namespace llm {

namespace {
// Row-major C (m x n) = alpha * op(A) @ op(B) + beta * C with explicit leading dimensions.
void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, alpha, a, lda, b, ldb, beta, c, ldc);
}
}  // namespace

// Per (batch, head): P = softmax(scale * Q K^T + mask), O = P V. Q rows of one head are H*D
// apart in (B, S, H, D), so the head is a strided matrix and nothing is copied. Query head h
// reads kv head h / (H / Hkv). One parallel region over heads (BLAS runs single-threaded inside
// it): many small regions per head stall badly when the cores are shared with other work.
void CpuBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                   Tensor& out, Tensor& probs) {
  require_f32("attention", q);
  OpTimer timer("attention");
  const int64_t B = q.size(0), S = q.size(1), H = q.size(2), D = q.size(3), Hkv = k.size(2);
  const int64_t group = H / Hkv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
#pragma omp parallel for schedule(dynamic)
  for (int64_t bh = 0; bh < B * H; bh++) {
    const int64_t b = bh / H, h = bh % H;
    const float* qh = q.data<float>() + (b * S * H + h) * D;
    const float* kh = k.data<float>() + (b * S * Hkv + h / group) * D;
    const float* vh = v.data<float>() + (b * S * Hkv + h / group) * D;
    float* p = probs.data<float>() + bh * S * S;
    sgemm(false, true, S, S, D, scale, qh, H * D, kh, Hkv * D, 0.0f, p, S);
    for (int64_t i = 0; i < S; i++) {
      float* row = p + i * S;
      const int64_t valid = causal ? i + 1 : S;
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < valid; j++) mx = std::max(mx, row[j]);
      float denom = 0.0f;
      for (int64_t j = 0; j < valid; j++) denom += (row[j] = std::exp(row[j] - mx));
      for (int64_t j = 0; j < valid; j++) row[j] /= denom;
      for (int64_t j = valid; j < S; j++) row[j] = 0.0f;
    }
    float* oh = out.data<float>() + (b * S * H + h) * D;
    sgemm(false, false, S, D, S, 1.0f, p, S, vh, Hkv * D, 0.0f, oh, H * D);
  }
}

// dV += P^T dO; dP = dO V^T; dS = P * (dP - rowsum(dP * P)); dQ = scale dS K; dK += scale dS^T Q.
// Parallel over (batch, kv head); the query heads of one GQA group run in order inside, so the
// sums into dK and dV are deterministic.
void CpuBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& probs, const Tensor& dout, bool /*causal*/,
                                    Tensor& dq, Tensor& dk, Tensor& dv) {
  require_f32("attention_backward", q);
  OpTimer timer("attention");
  const int64_t B = q.size(0), S = q.size(1), H = q.size(2), D = q.size(3), Hkv = k.size(2);
  const int64_t group = H / Hkv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  fill(dk, 0.0f);
  fill(dv, 0.0f);
#pragma omp parallel for schedule(dynamic)
  for (int64_t bkv = 0; bkv < B * Hkv; bkv++) {
    const int64_t b = bkv / Hkv, kv_off = (b * S * Hkv + bkv % Hkv) * D;
    std::vector<float> ds(S * S);  // masked entries have P = 0, hence dS = 0: no mask needed
    for (int64_t h = (bkv % Hkv) * group; h < (bkv % Hkv + 1) * group; h++) {
      const int64_t q_off = (b * S * H + h) * D;
      const float* p = probs.data<float>() + (b * H + h) * S * S;
      const float* doh = dout.data<float>() + q_off;
      sgemm(true, false, S, D, S, 1.0f, p, S, doh, H * D, 1.0f, dv.data<float>() + kv_off, Hkv * D);
      sgemm(false, true, S, S, D, 1.0f, doh, H * D, v.data<float>() + kv_off, Hkv * D, 0.0f, ds.data(), S);
      for (int64_t i = 0; i < S; i++) {
        float* row = ds.data() + i * S;
        const float* prow = p + i * S;
        float dot = 0.0f;
        for (int64_t j = 0; j < S; j++) dot += row[j] * prow[j];
        for (int64_t j = 0; j < S; j++) row[j] = prow[j] * (row[j] - dot);
      }
      sgemm(false, false, S, D, S, scale, ds.data(), S, k.data<float>() + kv_off, Hkv * D, 0.0f,
            dq.data<float>() + q_off, H * D);
      sgemm(true, false, S, D, S, scale, ds.data(), S, q.data<float>() + q_off, H * D, 1.0f,
            dk.data<float>() + kv_off, Hkv * D);
    }
  }
}

}  // namespace llm
