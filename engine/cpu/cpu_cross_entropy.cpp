// defines: CPU softmax cross-entropy (forward: per-row logsumexp and the mean loss; backward), and
// topk_entropy_weights (EAFT's per-token weights and its weighted mean loss), target_prob_weights
// (DFT's), argmax_hits (an accuracy's count), softmax_stats (each row's entropy and mean logit)
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "engine/argmax_order.h"
#include "engine/check.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_simd_math.h"
#include "engine/op_timer.h"

namespace llm {

namespace {
int64_t count_targets(const Tensor& targets, int ignore_index, int64_t vocab) {
  int64_t count = 0;
  for (int64_t i = 0; i < targets.numel(); i++) {
    int32_t t = targets.data<int32_t>()[i];
    if (t == ignore_index) continue;
    LLM_CHECK(t >= 0 && t < vocab, "cross_entropy: target " + std::to_string(t) +
                                       " outside the vocabulary of " + std::to_string(vocab));
    count++;
  }
  return count;
}
}  // namespace

// A batch whose targets are all ignored has loss 0 and zero gradients (not 0/0).
void CpuBackend::cross_entropy_forward(const Tensor& logits, const Tensor& targets,
                                       int ignore_index, Tensor& loss, Tensor& lse) {
  require_f32("cross_entropy", logits);
  OpTimer timer("cross_entropy");
  const int64_t N = logits.size(0), V = logits.size(1);
  const int64_t count = count_targets(targets, ignore_index, V);
  const float* x = logits.data<float>();
  float* plse = lse.data<float>();
  constexpr int64_t kBlock = 1024;  // exponentials computed (SIMD) a block at a time, summed in f64
#pragma omp parallel for
  for (int64_t i = 0; i < N; i++) {
    const float* row = x + i * V;
    const float mx = max_of(row, V);
    double s = 0.0;
    float e[kBlock];
    for (int64_t j0 = 0; j0 < V; j0 += kBlock) {
      const int64_t n = std::min(kBlock, V - j0);
      exp_sub(row + j0, mx, e, n);
      for (int64_t j = 0; j < n; j++) s += e[j];
    }
    plse[i] = mx + static_cast<float>(std::log(s));
  }
  double total = 0.0;  // serial: the same sum whatever the thread count
  for (int64_t i = 0; i < N; i++) {
    int32_t t = targets.data<int32_t>()[i];
    if (t != ignore_index) total += plse[i] - x[i * V + t];
  }
  loss.data<float>()[0] = count ? static_cast<float>(total / count) : 0.0f;
}

// dlogits = (softmax - onehot(target)) * dloss / count on counted rows, 0 on ignored ones.
void CpuBackend::cross_entropy_backward(const Tensor& logits, const Tensor& targets,
                                        const Tensor& lse, const Tensor& dloss, int ignore_index,
                                        Tensor& dlogits) {
  require_f32("cross_entropy_backward", logits);
  OpTimer timer("cross_entropy_backward");
  const int64_t N = logits.size(0), V = logits.size(1);
  const int64_t count = count_targets(targets, ignore_index, V);
  const float g = count ? dloss.data<float>()[0] / static_cast<float>(count) : 0.0f;
  const float* x = logits.data<float>();
  const float* plse = lse.data<float>();
  float* dx = dlogits.data<float>();
#pragma omp parallel for
  for (int64_t i = 0; i < N; i++) {
    int32_t t = targets.data<int32_t>()[i];
    float* drow = dx + i * V;
    if (t == ignore_index) {
      std::fill_n(drow, V, 0.0f);
      continue;
    }
    exp_sub(x + i * V, plse[i], drow, V);
    for (int64_t j = 0; j < V; j++) drow[j] *= g;
    drow[t] -= g;
  }
}

// As Axolotl's eaft_loss: torch.topk of the row, softmax over those k in f32, the entropy with
// its 1e-10 inside the log, then the power; the weighted token losses summed in f64, in order.
void CpuBackend::topk_entropy_weights(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                      int64_t k, float alpha, int ignore_index, Tensor& weights, Tensor& loss) {
  require_f32("topk_entropy_weights", logits);
  OpTimer timer("topk_entropy_weights");
  const int64_t N = logits.size(0), V = logits.size(1);
  LLM_CHECK(k >= 1 && k <= kMaxEntropyTopK && k <= V,
            "topk_entropy_weights: k " + std::to_string(k) + " outside [1, min(64, vocab " + std::to_string(V) + ")]");
  const float* x = logits.data<float>();
  float* w = weights.data<float>();
#pragma omp parallel for
  for (int64_t i = 0; i < N; i++) {
    std::vector<float> top(x + i * V, x + (i + 1) * V);
    std::nth_element(top.begin(), top.begin() + (k - 1), top.end(), std::greater<float>());
    const float mx = *std::max_element(top.begin(), top.begin() + k);
    float sum = 0.0f;
    for (int64_t j = 0; j < k; j++) sum += std::exp(top[j] - mx);
    float entropy = 0.0f;
    for (int64_t j = 0; j < k; j++) {
      const float p = std::exp(top[j] - mx) / sum;
      entropy -= p * std::log(p + 1e-10f);
    }
    w[i] = std::pow(entropy, alpha);
  }
  const int32_t* t = targets.data<int32_t>();
  const float* plse = lse.data<float>();
  double total = 0.0;
  int64_t count = 0;
  for (int64_t i = 0; i < N; i++) {
    if (t[i] == ignore_index) continue;
    LLM_CHECK(t[i] >= 0 && t[i] < V, "topk_entropy_weights: target " + std::to_string(t[i]) +
                                         " outside the vocabulary of " + std::to_string(V));
    total += static_cast<double>(w[i]) * (plse[i] - x[i * V + t[i]]);
    count++;
  }
  loss.data<float>()[0] = count ? static_cast<float>(total / static_cast<double>(count)) : 0.0f;
}

void CpuBackend::target_prob_weights(const Tensor& logits, const Tensor& targets, const Tensor& lse, int ignore_index,
                                     Tensor& weights, Tensor& loss) {
  require_f32("target_prob_weights", logits);
  OpTimer timer("target_prob_weights");
  const int64_t N = logits.size(0), V = logits.size(1);
  const float* x = logits.data<float>();
  const int32_t* t = targets.data<int32_t>();
  const float* plse = lse.data<float>();
  float* w = weights.data<float>();
  double total = 0.0;
  int64_t count = 0;
  for (int64_t i = 0; i < N; i++) {
    w[i] = 0.0f;
    if (t[i] == ignore_index) continue;
    LLM_CHECK(t[i] >= 0 && t[i] < V, "target_prob_weights: target " + std::to_string(t[i]) +
                                         " outside the vocabulary of " + std::to_string(V));
    const float token_loss = plse[i] - x[i * V + t[i]];
    w[i] = std::exp(-token_loss);
    total += static_cast<double>(w[i]) * token_loss;
    count++;
  }
  loss.data<float>()[0] = count ? static_cast<float>(total / static_cast<double>(count)) : 0.0f;
}

void CpuBackend::argmax_hits(const Tensor& logits, const Tensor& targets, int ignore_index, Tensor& hits) {
  require_f32("argmax_hits", logits);
  OpTimer timer("argmax_hits");
  const int64_t N = logits.size(0), V = logits.size(1);
  const float* x = logits.data<float>();
  const int32_t* t = targets.data<int32_t>();
  float* out = hits.data<float>();
  count_targets(targets, ignore_index, V);  // refuses a target outside the vocabulary
#pragma omp parallel for
  for (int64_t i = 0; i < N; i++) {
    const float* row = x + i * V;
    bool hit = t[i] != ignore_index;
    for (int64_t j = 0; hit && j < V; j++) hit = !argmax_precedes(row[j], j, row[t[i]], t[i]);
    out[i] = hit ? 1.0f : 0.0f;
  }
}

void CpuBackend::softmax_stats(const Tensor& logits, const Tensor& lse, Tensor& entropy, Tensor& mean_logit) {
  require_f32("softmax_stats", logits);
  OpTimer timer("softmax_stats");
  const int64_t N = logits.size(0), V = logits.size(1);
  const float* x = logits.data<float>();
  const float* plse = lse.data<float>();
  float* h = entropy.data<float>();
  float* mean = mean_logit.data<float>();
#pragma omp parallel for
  for (int64_t i = 0; i < N; i++) {
    const float* row = x + i * V;
    double expected = 0.0, total = 0.0;  // sum_v p_v z_v and sum_v z_v
    for (int64_t j = 0; j < V; j++) {
      const double p = std::exp(static_cast<double>(row[j]) - plse[i]);
      if (p > 0.0) expected += p * row[j];  // p = 0 (a logit of -inf) adds 0, not 0 x -inf
      total += row[j];
    }
    h[i] = static_cast<float>(plse[i] - expected);
    mean[i] = static_cast<float>(total / static_cast<double>(V));
  }
}

}  // namespace llm
