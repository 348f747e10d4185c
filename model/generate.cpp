// defines: next_token_probabilities (HF's sampling processors), sample (drawing from the last
// position's logits, with a key/value cache)
#include "model/generate.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <random>

#include "engine/autograd.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

namespace {
// Per layer, the rotated keys and the values of every position seen so far, rows (position,
// kv head, D) as the layers computed them: a new token's forward reads them instead of
// recomputing every earlier position (without it, each token re-ran its whole context).
struct KvCache {
  std::vector<std::vector<float>> k, v;  // per layer
  int64_t length = 0;                    // positions held
};

// Cache rows (L, Hkv, D) regrouped by kv head: a (Hkv, L, D) tensor, as a batched matmul reads it.
Tensor by_head(const std::vector<float>& rows, int64_t Hkv, int64_t D, Device device) {
  const int64_t L = static_cast<int64_t>(rows.size()) / (Hkv * D);
  std::vector<float> out(rows.size());
  for (int64_t t = 0; t < L; t++)
    for (int64_t h = 0; h < Hkv; h++)
      std::copy_n(rows.data() + (t * Hkv + h) * D, D, out.data() + (h * L + t) * D);
  return Tensor::from_floats(out, {Hkv, L, D}, device);
}

// One new query q (1, 1, H, D), the last position, over every cached key and value (Hkv, L, D):
// softmax(q K^T / sqrt(D)) V per head, query head h reading kv head h / (H / Hkv). Nothing is
// masked (every cached position precedes it); the softmax of H rows of L runs on the host.
Tensor attend_last(const Tensor& q, const Tensor& keys, const Tensor& values) {
  const int64_t H = q.size(2), D = q.size(3), Hkv = keys.size(0), L = keys.size(1);
  std::vector<float> p = matmul(reshape(q, {Hkv, H / Hkv, D}), keys, false, true).to_floats();
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  for (int64_t r = 0; r < H; r++) {
    float* row = p.data() + r * L;
    for (int64_t j = 0; j < L; j++) row[j] *= scale;
    const float mx = *std::max_element(row, row + L);
    float sum = 0.0f;
    for (int64_t j = 0; j < L; j++) sum += row[j] = std::exp(row[j] - mx);
    for (int64_t j = 0; j < L; j++) row[j] /= sum;
  }
  Tensor probs = Tensor::from_floats(p, {Hkv, H / Hkv, L}, q.device());
  return reshape(matmul(probs, values), {1, 1, H, D});
}
}  // namespace

std::vector<double> next_token_probabilities(std::vector<float> logits, const std::vector<int32_t>& seen,
                                             const SampleOptions& opt) {
  const int64_t V = static_cast<int64_t>(logits.size());
  if (opt.repetition_penalty != 1.0f) {
    std::vector<bool> penalised(logits.size(), false);
    for (int32_t id : seen) {
      if (id < 0 || id >= V || penalised[id]) continue;
      penalised[id] = true;
      float& z = logits[id];
      z = z < 0 ? z * opt.repetition_penalty : z / opt.repetition_penalty;
    }
  }
  for (float& z : logits) z /= opt.temperature;
  constexpr float kRemoved = -std::numeric_limits<float>::infinity();
  if (opt.top_k > 0 && opt.top_k < V) {  // below the k-th largest: removed (ties with it kept)
    std::vector<float> sorted = logits;
    std::nth_element(sorted.begin(), sorted.begin() + (opt.top_k - 1), sorted.end(), std::greater<float>());
    const float kth = sorted[opt.top_k - 1];
    for (float& z : logits)
      if (z < kth) z = kRemoved;
  }
  const auto softmax = [](const std::vector<float>& z) {
    const float mx = *std::max_element(z.begin(), z.end());
    std::vector<double> p(z.size());
    double sum = 0;
    for (size_t i = 0; i < z.size(); i++) sum += p[i] = std::exp(static_cast<double>(z[i]) - mx);
    for (double& x : p) x /= sum;
    return p;
  };
  if (opt.top_p < 1.0f) {
    // HF's: ascending order; an id goes while the mass up to and including it is at most
    // 1 - top_p; the largest always stays.
    std::vector<int64_t> order(logits.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return logits[a] < logits[b]; });
    const std::vector<double> p = softmax(logits);
    double mass = 0;
    for (size_t i = 0; i + 1 < order.size(); i++) {
      mass += p[order[i]];
      if (mass > 1.0 - opt.top_p) break;
      logits[order[i]] = kRemoved;
    }
  }
  return softmax(logits);
}

std::vector<int32_t> sample(LlamaModel& model, std::vector<int32_t> tokens, const SampleOptions& opt) {
  LLM_CHECK(!tokens.empty(), "sample: the prompt must hold at least one token");
  NoGradGuard no_grad;
  std::mt19937_64 rng(opt.seed);
  const LlamaConfig& c = model.config();
  const int64_t Hkv = c.num_key_value_heads, D = c.head_dim();
  const Device dev = model.device();
  KvCache cache{std::vector<std::vector<float>>(c.num_hidden_layers),
                std::vector<std::vector<float>>(c.num_hidden_layers), 0};
  ForwardOptions cached;
  cached.ssmax = opt.ssmax;
  // The first forward (nothing cached) runs the prompt through causal attention; each later one
  // runs one token. Either way its keys and values join the cache.
  cached.attend = [&cache, Hkv, D, dev](int64_t layer, const Tensor& q, const Tensor& k, const Tensor& v) {
    for (auto [from, to] : {std::pair{&k, &cache.k[layer]}, {&v, &cache.v[layer]}}) {
      std::vector<float> rows = from->to_floats();
      to->insert(to->end(), rows.begin(), rows.end());
    }
    if (cache.length == 0) return attention(q, k, v, /*causal=*/true);
    LLM_CHECK(q.size(1) == 1, "sample: one token at a time after the prompt");
    return attend_last(q, by_head(cache.k[layer], Hkv, D, dev), by_head(cache.v[layer], Hkv, D, dev));
  };
  ForwardOptions uncached;
  uncached.ssmax = opt.ssmax;
  std::vector<int32_t> generated;
  for (int64_t n = 0; n < opt.max_new_tokens; n++) {
    const int64_t len = std::min<int64_t>(opt.context, static_cast<int64_t>(tokens.size()));
    // Past the context the window slides and every position moves: nothing cached holds, and the
    // whole window runs again, uncached.
    const bool slides = static_cast<int64_t>(tokens.size()) > opt.context;
    const int64_t first = slides || cache.length == 0 ? 0 : cache.length;
    std::vector<int32_t> window(tokens.end() - (len - first), tokens.end()), pos(len - first);
    for (int64_t i = first; i < len; i++) pos[i - first] = static_cast<int32_t>(i);
    Tensor hidden = model.hidden_states(Tensor::from_ints(window, {1, len - first}, dev),
                                        Tensor::from_ints(pos, {1, len - first}, dev),
                                        slides ? uncached : cached);
    if (!slides) cache.length = len;
    Tensor last = hidden.narrow(0, hidden.size(0) - 1, 1);
    std::vector<float> logits = model.logits_from_hidden(last).to_floats();
    int32_t next = 0;
    if (opt.temperature <= 0.0f) {
      next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    } else {
      const std::vector<double> p = next_token_probabilities(std::move(logits), tokens, opt);
      next = static_cast<int32_t>(std::discrete_distribution<int64_t>(p.begin(), p.end())(rng));
    }
    tokens.push_back(next);
    generated.push_back(next);
    if (opt.on_token) opt.on_token(next);
    if (std::find(opt.stop_tokens.begin(), opt.stop_tokens.end(), next) != opt.stop_tokens.end()) break;
  }
  return generated;
}

}  // namespace llm
