// defines: CPU eager attention (scores materialised per head; GEMMs through OpenBLAS)
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_simd_math.h"
#include "engine/op_timer.h"

namespace llm {

namespace {
// Row-major C (m x n) = alpha * op(A) @ op(B) + beta * C with explicit leading dimensions.
void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// xt (D, S) = the S rows of one head (D floats each, ld apart) transposed. Q K^T and dO V^T
// then multiply by a plain (D, keys) matrix: OpenBLAS's small-matrix kernel runs a 64-row tile at
// head_dim 32 at 130-140 GFLOP/s that way and at 84-87 with K^T taken by a transposed operand.
void transpose_head(const float* x, int64_t S, int64_t D, int64_t ld, float* xt) {
  for (int64_t j = 0; j < S; j++)
    for (int64_t d = 0; d < D; d++) xt[d * S + j] = x[j * ld + d];
}
}  // namespace

// Causal attention needs only the lower triangle: queries go in blocks of kRows, and block
// [i0, i0 + m) works on keys [0, i0 + m) only, about half the GEMM work of the full square.
constexpr int64_t kRows = 64;

// Per (batch, head): P = softmax(scale * Q K^T + mask), O = P V. Q rows of one head are H*D
// apart in (B, S, H, D), so the head is a strided matrix and nothing is copied but the keys of a
// kv head, transposed once for its query heads h (those with h / (H / Hkv) equal). One parallel
// region over (batch, kv head) (BLAS runs single-threaded inside it): many small regions per
// head stall badly when the cores are shared with other work.
// probs holds P for the keys each query block sees, zeros above the diagonal inside the block;
// what lies beyond the block's keys is never written nor read.
void CpuBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                   Tensor& out, Tensor& probs) {
  require_f32("attention", q);
  OpTimer timer("attention");
  const int64_t B = q.size(0), S = q.size(1), H = q.size(2), D = q.size(3), Hkv = k.size(2);
  const int64_t group = H / Hkv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
#pragma omp parallel
  {
    std::vector<float> kt(D * S);  // the kv head's keys, transposed
#pragma omp for schedule(dynamic)
    for (int64_t bkv = 0; bkv < B * Hkv; bkv++) {
      const int64_t b = bkv / Hkv, kv_off = (b * S * Hkv + bkv % Hkv) * D;
      transpose_head(k.data<float>() + kv_off, S, D, Hkv * D, kt.data());
      const float* vh = v.data<float>() + kv_off;
      for (int64_t h = (bkv % Hkv) * group; h < (bkv % Hkv + 1) * group; h++) {
        const float* qh = q.data<float>() + (b * S * H + h) * D;
        float* oh = out.data<float>() + (b * S * H + h) * D;
        float* p = probs.data<float>() + (b * H + h) * S * S;
        for (int64_t i0 = 0; i0 < S; i0 += kRows) {
          const int64_t m = std::min(kRows, S - i0), keys = causal ? i0 + m : S;
          float* pb = p + i0 * S;
          sgemm(false, false, m, keys, D, scale, qh + i0 * H * D, H * D, kt.data(), S, 0.0f, pb, S);
          for (int64_t r = 0; r < m; r++) {
            float* row = pb + r * S;
            const int64_t valid = causal ? i0 + r + 1 : S;
            const float denom = exp_sub_sum(row, max_of(row, valid), row, valid);
            for (int64_t j = 0; j < valid; j++) row[j] /= denom;
            std::fill(row + valid, row + keys, 0.0f);  // the block's GEMMs read keys [0, keys) only
          }
          sgemm(false, false, m, D, keys, 1.0f, pb, S, vh, Hkv * D, 0.0f, oh + i0 * H * D, H * D);
        }
      }
    }
  }
}

// dV += P^T dO; dP = dO V^T; dS = P * (dP - rowsum(dP * P)); dQ = scale dS K; dK += scale dS^T Q,
// a block of kRows queries at a time against the keys it sees (P = 0 beyond them, so dS = 0 too).
// Parallel over (batch, kv head); the query heads of one GQA group and the query blocks run in
// order inside, so the sums into dK and dV are deterministic.
void CpuBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& probs, const Tensor& dout, bool causal,
                                    Tensor& dq, Tensor& dk, Tensor& dv) {
  require_f32("attention_backward", q);
  OpTimer timer("attention_backward");
  const int64_t B = q.size(0), S = q.size(1), H = q.size(2), D = q.size(3), Hkv = k.size(2);
  const int64_t group = H / Hkv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  // Zeroed here, not through fill(), whose own timer would count this time twice in a split.
  std::fill_n(dk.data<float>(), dk.numel(), 0.0f);
  std::fill_n(dv.data<float>(), dv.numel(), 0.0f);
#pragma omp parallel for schedule(dynamic)
  for (int64_t bkv = 0; bkv < B * Hkv; bkv++) {
    const int64_t b = bkv / Hkv, kv_off = (b * S * Hkv + bkv % Hkv) * D;
    const float* kh = k.data<float>() + kv_off;
    const float* vh = v.data<float>() + kv_off;
    float* dkh = dk.data<float>() + kv_off;
    float* dvh = dv.data<float>() + kv_off;
    std::vector<float> ds(kRows * S);  // dP, then dS, of one query block: all read is written
    std::vector<float> vt(D * S);      // the kv head's values, transposed
    transpose_head(vh, S, D, Hkv * D, vt.data());
    for (int64_t h = (bkv % Hkv) * group; h < (bkv % Hkv + 1) * group; h++) {
      const int64_t q_off = (b * S * H + h) * D;
      for (int64_t i0 = 0; i0 < S; i0 += kRows) {
        const int64_t m = std::min(kRows, S - i0), keys = causal ? i0 + m : S;
        const float* p = probs.data<float>() + ((b * H + h) * S + i0) * S;
        const float* doh = dout.data<float>() + q_off + i0 * H * D;
        const float* qh = q.data<float>() + q_off + i0 * H * D;
        sgemm(true, false, keys, D, m, 1.0f, p, S, doh, H * D, 1.0f, dvh, Hkv * D);
        sgemm(false, false, m, keys, D, 1.0f, doh, H * D, vt.data(), S, 0.0f, ds.data(), S);
        for (int64_t r = 0; r < m; r++) {
          float* row = ds.data() + r * S;
          const float* prow = p + r * S;
          softmax_grad(prow, dot_of(row, prow, keys), row, keys);
        }
        sgemm(false, false, m, D, keys, scale, ds.data(), S, kh, Hkv * D, 0.0f,
              dq.data<float>() + q_off + i0 * H * D, H * D);
        sgemm(true, false, keys, D, m, scale, ds.data(), S, qh, H * D, 1.0f, dkh, Hkv * D);
      }
    }
  }
}

}  // namespace llm
