// The tests' attention reference: attention under an arbitrary mask with an optional additive
// bias (Bb, Hb, S, S), forward and the gradients for dout, in double precision, in two modes:
//   exact:    the answer every tiled attention is checked against (CPU tests);
//   bf16_ops: eager attention as PyTorch runs it on bf16 tensors, each op's output rounded to
//             bf16 (Q K^T, its scaling, the bias add, softmax, P V; dP, dS, the scaled dS and the
//             three gradient products), on the same inputs. This is the baseline of
//             FlashAttention's bf16 criterion, |ours - f32 ref| <= 2 |eager bf16 - f32 ref|: the
//             error a user gets from eager attention in bf16. (Our own eager attention computes
//             bf16 in f32 and rounds only its outputs, so it is no such baseline.)
// Two passes, both parallel: rows give the output, the row statistics and dQ; key columns then
// recompute the same probabilities from those statistics and give dK, dV and the bias gradient,
// so no S x S buffer is kept and no two threads add into the same element.
#pragma once
#include <cmath>
#include <functional>
#include <vector>

#include "engine/dtype.h"
#include "engine/tensor.h"

namespace llm::testing {

using Allowed = std::function<bool(int64_t b, int64_t h, int64_t i, int64_t j)>;
enum class RefMode { exact, bf16_ops };

// S2's mask, written from LongLoRA's definition rather than from the kernels' tile arithmetic:
// heads h < H/2 attend causally within groups [nG, nG + G), the others within groups shifted by
// G // 2 (LongLoRA's and Axolotl's group_size // 2): [0, G//2), [G//2, G//2 + G), ..., with
// part groups at both ends and no wrap-around.
inline bool s2_allowed(int64_t H, int64_t G, int64_t h, int64_t i, int64_t j) {
  auto group_of = [&](int64_t t) { return h < H / 2 ? t / G : t < G / 2 ? 0 : 1 + (t - G / 2) / G; };
  return j <= i && group_of(i) == group_of(j);
}

struct Reference {
  std::vector<double> out, dq, dk, dv, dbias;
};

inline Reference attention_reference(const Tensor& q, const Tensor& k, const Tensor& v,
                                     const Tensor& dout, const Allowed& allowed,
                                     const Tensor& bias = Tensor(),
                                     RefMode mode = RefMode::exact) {
  const int64_t B = q.size(0), S = q.size(1), H = q.size(2), D = q.size(3), Hkv = k.size(2);
  const int64_t group = H / Hkv;
  std::vector<float> Q = q.to_floats(), K = k.to_floats(), V = v.to_floats(), dO = dout.to_floats();
  std::vector<float> bias_v = bias.defined() ? bias.to_floats() : std::vector<float>();
  Reference r{std::vector<double>(Q.size()), std::vector<double>(Q.size()),
              std::vector<double>(K.size()), std::vector<double>(K.size()),
              std::vector<double>(bias_v.size())};
  const bool bf16 = mode == RefMode::bf16_ops;
  auto rounded = [bf16](double x) { return bf16 ? double(bf16_to_f32(f32_to_bf16(float(x)))) : x; };
  const double scale = 1.0 / std::sqrt(double(D));
  auto q_at = [&](int64_t b, int64_t h, int64_t i) { return ((b * S + i) * H + h) * D; };
  auto kv_at = [&](int64_t b, int64_t h, int64_t j) { return ((b * S + j) * Hkv + h / group) * D; };
  auto bias_at = [&](int64_t b, int64_t h, int64_t i) -> int64_t {
    if (!bias.defined()) return -1;
    const int64_t bb = bias.size(0) > 1 ? b : 0, bh = bias.size(1) > 1 ? h : 0;
    return ((bb * bias.size(1) + bh) * S + i) * S;
  };
  // Four partial sums: the same answer to double rounding, 1.7x the speed (the GPU tests
  // run this at S = 4096).
  auto dot = [&](const std::vector<float>& x, int64_t xi, const std::vector<float>& y,
                 int64_t yi) {
    double s[4] = {0, 0, 0, 0};
    int64_t d = 0;
    for (; d + 4 <= D; d += 4)
      for (int u = 0; u < 4; u++) s[u] += double(x[xi + d + u]) * y[yi + d + u];
    for (; d < D; d++) s[0] += double(x[xi + d]) * y[yi + d];
    return (s[0] + s[1]) + (s[2] + s[3]);
  };
  // The scaled, biased score of (i, j), as the op sequence rounds it.
  auto score = [&](int64_t b, int64_t h, int64_t i, int64_t j) {
    const int64_t row = bias_at(b, h, i);
    const double s = rounded(rounded(dot(Q, q_at(b, h, i), K, kv_at(b, h, j))) * scale);
    return row < 0 ? s : rounded(s + bias_v[row + j]);
  };

  // Pass 1, one query row each: softmax statistics, output, rowsum(dP * P) and dQ.
  const int64_t rows = B * H * S;
  std::vector<double> row_max(rows, -INFINITY), row_sum(rows), row_delta(rows);
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t n = 0; n < rows; n++) {
    const int64_t b = n / (H * S), h = n / S % H, i = n % S, qi = q_at(b, h, i);
    std::vector<double> p(S, 0.0), dp(S, 0.0), o(D, 0.0), g(D, 0.0);
    double mx = -INFINITY, sum = 0, delta = 0;
    for (int64_t j = 0; j < S; j++)
      if (allowed(b, h, i, j)) mx = std::max(mx, p[j] = score(b, h, i, j));
    if (mx == -INFINITY) continue;  // sees no key: output and gradients 0
    for (int64_t j = 0; j < S; j++)
      if (allowed(b, h, i, j)) sum += std::exp(p[j] - mx);
    for (int64_t j = 0; j < S; j++) {
      if (!allowed(b, h, i, j)) continue;
      p[j] = rounded(std::exp(p[j] - mx) / sum);
      dp[j] = rounded(dot(dO, qi, V, kv_at(b, h, j)));
      delta += p[j] * dp[j];
      for (int64_t d = 0; d < D; d++) o[d] += p[j] * V[kv_at(b, h, j) + d];
    }
    for (int64_t j = 0; j < S; j++) {
      if (!allowed(b, h, i, j)) continue;
      const double ds = rounded(rounded(p[j] * (dp[j] - delta)) * scale);
      for (int64_t d = 0; d < D; d++) g[d] += ds * K[kv_at(b, h, j) + d];
    }
    for (int64_t d = 0; d < D; d++) r.out[qi + d] = rounded(o[d]), r.dq[qi + d] = rounded(g[d]);
    row_max[n] = mx, row_sum[n] = sum, row_delta[n] = delta;
  }

  // Pass 2, one key column each (over every batch and kv head): dK, dV and the bias gradient.
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t j = 0; j < S; j++)
    for (int64_t b = 0; b < B; b++)
      for (int64_t hk = 0; hk < Hkv; hk++) {
        const int64_t kj = ((b * S + j) * Hkv + hk) * D;
        std::vector<double> gk(D, 0.0), gv(D, 0.0);
        for (int64_t h = hk * group; h < (hk + 1) * group; h++)
          for (int64_t i = 0; i < S; i++) {
            const int64_t n = (b * H + h) * S + i, qi = q_at(b, h, i);
            if (row_max[n] == -INFINITY || !allowed(b, h, i, j)) continue;
            const double p = rounded(std::exp(score(b, h, i, j) - row_max[n]) / row_sum[n]);
            const double dp = rounded(dot(dO, qi, V, kj));
            const double ds = rounded(p * (dp - row_delta[n]));
            for (int64_t d = 0; d < D; d++) {
              gk[d] += rounded(ds * scale) * Q[qi + d];
              gv[d] += p * dO[qi + d];
            }
            if (bias.defined()) r.dbias[bias_at(b, h, i) + j] += ds;
          }
        for (int64_t d = 0; d < D; d++) {
          r.dk[kj + d] = rounded(gk[d]);
          r.dv[kj + d] = rounded(gv[d]);
        }
      }
  if (bf16)
    for (double& x : r.dbias) x = rounded(x);
  return r;
}

}  // namespace llm::testing
