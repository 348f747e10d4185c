// The loss ops on the CPU backend: cross_entropy and the chunked lm_head loss
// (linear_cross_entropy, with EAFT's weights too) against direct formulas and finite
// differences (tolerances in test_util.h), and what they read and hold.
#include <algorithm>
#include <cmath>
#include <functional>
#include <utility>
#include <vector>

#include "engine/backend.h"
#include "engine/op_timer.h"
#include "engine/ops.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

TEST_CASE("cross_entropy: mean over non-ignored targets; -100 rows get no gradient") {
  const int64_t N = 7, V = 13;
  Tensor logits = randn({N, V}, 2.0f);
  Tensor targets = Tensor::from_ints({3, -100, 12, 0, 5, -100, 7}, {N});
  std::vector<float> x = logits.to_floats();
  std::vector<int32_t> t = targets.to_ints();
  double total = 0;
  int count = 0;
  for (int64_t i = 0; i < N; i++) {
    if (t[i] == -100) continue;
    double mx = -INFINITY, s = 0;
    for (int64_t j = 0; j < V; j++) mx = std::max(mx, double(x[i * V + j]));
    for (int64_t j = 0; j < V; j++) s += std::exp(x[i * V + j] - mx);
    total += mx + std::log(s) - x[i * V + t[i]];
    count++;
  }
  CHECK(cross_entropy(logits, targets).item() == doctest::Approx(total / count).epsilon(1e-6));
  logits.set_requires_grad(true);  // shares its autograd state with the copy check_gradients makes
  check_gradients([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1]); },
                  {logits, targets});
  std::vector<float> g = logits.grad().to_floats();
  for (int64_t j = 0; j < V; j++) CHECK(g[1 * V + j] == 0.0f);

  Tensor all_ignored = Tensor::from_ints(std::vector<int32_t>(N, -100), {N});
  CHECK(cross_entropy(logits.detach(), all_ignored).item() == 0.0f);
  CHECK_THROWS(cross_entropy(logits.detach(), Tensor::from_ints(std::vector<int32_t>(N, V), {N})));
}

// A NaN logit is never passed over: the row's logsumexp, and so the loss, is NaN wherever the NaN
// sits (first in its row, or among nothing but -inf), so a non-finite-loss check sees it.
TEST_CASE("cross_entropy: a NaN logit makes the loss NaN") {
  const int64_t V = 13;
  std::vector<float> first = randn({1, V}).to_floats(), among_inf(V, -INFINITY);
  first[0] = NAN;
  among_inf[5] = NAN;
  for (const std::vector<float>& row : {first, among_inf})
    CHECK(std::isnan(cross_entropy(Tensor::from_floats(row, {1, V}), Tensor::from_ints({3}, {1})).item()));
}

TEST_CASE("linear_cross_entropy: equals cross_entropy(linear) in any chunking; gradients") {
  const int64_t N = 13, C = 7, V = 11;
  Tensor h = randn({N, C}), w = randn({V, C});
  Tensor targets = Tensor::from_ints({3, -100, 10, 0, 5, -100, 7, 1, 2, -100, 4, 9, 6}, {N});
  const float reference = cross_entropy(linear(h, w), targets).item();
  for (int64_t chunk : {1, 4, 13, 0}) {
    CAPTURE(chunk);
    CHECK(linear_cross_entropy(h, w, targets, kIgnoreIndex, chunk).item() ==
          doctest::Approx(reference).epsilon(1e-6));
    check_gradients([&](const std::vector<Tensor>& in) {
      return linear_cross_entropy(in[0], in[1], in[2], kIgnoreIndex, chunk);
    }, {h, w, targets});
  }
  Tensor all_ignored = Tensor::from_ints(std::vector<int32_t>(N, -100), {N});
  CHECK(linear_cross_entropy(h, w, all_ignored, kIgnoreIndex, 4).item() == 0.0f);
  // Only counted rows go through lm_head: an ignored row's d(hidden) is exactly zero, and with
  // every row ignored so is all of it.
  for (Tensor* t : {&targets, &all_ignored}) {
    Tensor hg = h.detach(), wg = w.detach();
    hg.set_requires_grad(true);
    wg.set_requires_grad(true);
    backward(linear_cross_entropy(hg, wg, *t, kIgnoreIndex, 4));
    const std::vector<float> dh = hg.grad().to_floats();
    const std::vector<int32_t> ids = t->to_ints();
    for (int64_t i = 0; i < N; i++)
      if (ids[i] == kIgnoreIndex)
        for (int64_t c = 0; c < C; c++) CHECK(dh[i * C + c] == 0.0f);
  }
}

namespace {
// The loss sum(w ce) / count over the counted rows and its gradients with each row's weight held
// constant (finite differences would differentiate the weights too): `weight(row, lse, target)`
// gives row i's weight from its logits.
struct WeightedReference {
  double loss = 0.0;
  std::vector<double> dh, dw;
};
WeightedReference weighted_reference(const Tensor& h, const Tensor& w, const std::vector<int32_t>& ids,
                                     const std::function<double(const float* row, double lse, int32_t target)>& weight) {
  const int64_t N = h.size(0), C = h.size(1), V = w.size(0);
  const std::vector<float> logits = linear(h, w).to_floats(), H = h.to_floats(), W = w.to_floats();
  WeightedReference r{0.0, std::vector<double>(N * C, 0.0), std::vector<double>(V * C, 0.0)};
  std::vector<double> dlogits(N * V, 0.0);
  int64_t count = 0;
  for (int64_t i = 0; i < N; i++) {
    if (ids[i] == kIgnoreIndex) continue;
    count++;
    const float* row = logits.data() + i * V;
    const double mx = *std::max_element(row, row + V);
    double lse_sum = 0.0;
    for (int64_t j = 0; j < V; j++) lse_sum += std::exp(row[j] - mx);
    const double lse = mx + std::log(lse_sum), wi = weight(row, lse, ids[i]);
    r.loss += wi * (lse - row[ids[i]]);
    for (int64_t j = 0; j < V; j++) dlogits[i * V + j] = wi * (std::exp(row[j] - lse) - (j == ids[i]));
  }
  r.loss /= static_cast<double>(count);
  for (double& d : dlogits) d /= static_cast<double>(count);
  for (int64_t i = 0; i < N; i++)
    for (int64_t j = 0; j < V; j++)
      for (int64_t c = 0; c < C; c++) {
        r.dh[i * C + c] += dlogits[i * V + j] * W[j * C + c];
        r.dw[j * C + c] += dlogits[i * V + j] * H[i * C + c];
      }
  return r;
}

// linear_cross_entropy with `weighting` against the reference, at chunks of 1, 4 and all rows.
void check_weighted(const Tensor& h, const Tensor& w, const Tensor& targets, TokenWeighting weighting,
                    const WeightedReference& want) {
  for (int64_t chunk : {1, 4, 0}) {
    CAPTURE(chunk);
    Tensor hg = h.detach(), wg = w.detach();
    hg.set_requires_grad(true);
    wg.set_requires_grad(true);
    const Tensor out = linear_cross_entropy(hg, wg, targets, kIgnoreIndex, chunk, Tensor(), weighting);
    CHECK(out.item() == doctest::Approx(want.loss).epsilon(1e-5));
    backward(out);
    const std::vector<float> got_dh = hg.grad().to_floats(), got_dw = wg.grad().to_floats();
    for (size_t i = 0; i < got_dh.size(); i++) CHECK(got_dh[i] == doctest::Approx(want.dh[i]).epsilon(1e-4).scale(1e-3));
    for (size_t i = 0; i < got_dw.size(); i++) CHECK(got_dw[i] == doctest::Approx(want.dw[i]).epsilon(1e-4).scale(1e-3));
  }
}

const std::vector<int32_t> kWeightedIds = {3, -100, 10, 0, 5, -100, 7, 1, 2, -100, 4, 9, 6};
}  // namespace

// EAFT as Axolotl's eaft_loss: row i's weight is H^alpha, H = -sum p log(p + 1e-10) over the
// softmax of its k largest logits.
TEST_CASE("linear_cross_entropy with EAFT: top-k entropy weights, and gradients with the weights held") {
  const int64_t N = 13, C = 7, V = 11, k = 4;
  const float alpha = 0.7f;
  Tensor h = randn({N, C}), w = randn({V, C});
  Tensor targets = Tensor::from_ints(kWeightedIds, {N});
  const WeightedReference want = weighted_reference(h, w, kWeightedIds, [&](const float* row, double, int32_t) {
    std::vector<float> top(row, row + V);
    std::sort(top.begin(), top.end(), std::greater<float>());
    double sum = 0.0, entropy = 0.0;
    for (int64_t j = 0; j < k; j++) sum += std::exp(double(top[j]) - top[0]);
    for (int64_t j = 0; j < k; j++) {
      const double p = std::exp(double(top[j]) - top[0]) / sum;
      entropy -= p * std::log(p + 1e-10);
    }
    return std::pow(entropy, double(alpha));
  });
  check_weighted(h, w, targets, {k, alpha}, want);
  // alpha 0: every weight 1, the plain loss; k past the vocabulary is refused by name.
  CHECK(linear_cross_entropy(h, w, targets, kIgnoreIndex, 4, Tensor(), {k, 0.0f}).item() ==
        doctest::Approx(linear_cross_entropy(h, w, targets, kIgnoreIndex, 4).item()).epsilon(1e-6));
  CHECK_THROWS_WITH(linear_cross_entropy(h, w, targets, kIgnoreIndex, 4, Tensor(), {V + 1, 1.0f}),
                    doctest::Contains("topk_entropy_weights: k 12 outside"));
}

// DFT as Axolotl's: row i's weight is exp(-ce_i), the probability of its target.
TEST_CASE("linear_cross_entropy with DFT: target-probability weights, and gradients with the weights held") {
  const int64_t N = 13, C = 7;
  Tensor h = randn({N, C}), w = randn({11, C});
  Tensor targets = Tensor::from_ints(kWeightedIds, {N});
  const WeightedReference want = weighted_reference(
      h, w, kWeightedIds, [](const float* row, double lse, int32_t target) { return std::exp(row[target] - lse); });
  TokenWeighting dft;
  dft.dft = true;
  check_weighted(h, w, targets, dft, want);
  CHECK(want.loss < linear_cross_entropy(h, w, targets).item());  // every weight below 1
}

// Rows of 4 logits: a clear maximum, ties (the first wins, as torch.argmax), NaNs (a NaN wins, the
// first of two), and an ignored row (never a hit).
const float kNaN = std::nanf("");
const std::vector<float> kArgmaxLogits = {1, 3, 2, 0, 1, 3, 2, 0, 3, 1, 3, 0, 3, 1, 3, 0,
                                          1, kNaN, 5, 0, 1, kNaN, 5, kNaN, 1, 2, 3, 4};
const std::vector<int32_t> kArgmaxTargets = {1, 2, 0, 2, 2, 1, kIgnoreIndex};
const std::vector<float> kArgmaxHits = {1, 0, 1, 0, 0, 1, 0};

TEST_CASE("argmax_hits: a row hits when its target comes first in torch.argmax's order") {
  const Tensor logits = Tensor::from_floats(kArgmaxLogits, {7, 4});
  Tensor hits = Tensor::empty({7}, DType::f32);
  backend(Device::cpu()).argmax_hits(logits, Tensor::from_ints(kArgmaxTargets, {7}), kIgnoreIndex, hits);
  CHECK(hits.to_floats() == kArgmaxHits);
  CHECK_THROWS_WITH(backend(Device::cpu()).argmax_hits(logits, Tensor::from_ints({1, 2, 0, 2, 2, 4, 0}, {7}),
                                                       kIgnoreIndex, hits),
                    doctest::Contains("target 4 outside the vocabulary of 4"));
}

TEST_CASE("linear_cross_entropy reads nothing on the host given the targets there") {
  const int64_t N = 13, C = 7, V = 11;
  Tensor h = randn({N, C}), w = randn({V, C});
  h.set_requires_grad(true);
  w.set_requires_grad(true);
  Tensor targets = Tensor::from_ints({3, -100, 10, 0, 5, -100, 7, 1, 2, -100, 4, 9, 6}, {N});
  Tensor host = targets.clone();  // a batch's copy in host memory
  uint64_t reads = host_reads();
  Tensor loss = linear_cross_entropy(h, w, targets, kIgnoreIndex, 4, host);
  backward(loss, Tensor::full({}, 0.5f, DType::f32));
  CHECK(host_reads() == reads);
  // Without them, the targets are read once (on a GPU, a wait for the device).
  reads = host_reads();
  const float again = linear_cross_entropy(h.detach(), w.detach(), targets, kIgnoreIndex, 4).item();
  CHECK(host_reads() - reads == 2);  // the targets, then this test's item()
  CHECK(loss.item() == again);
  CHECK_THROWS(linear_cross_entropy(h, w, targets, kIgnoreIndex, 4, host.narrow(0, 0, 4)));
}

TEST_CASE("linear_cross_entropy never holds more than one chunk of logits") {
  const int64_t N = 256, C = 16, V = 4096, chunk = 32;
  Tensor h = randn({N, C}), w = randn({V, C});
  h.set_requires_grad(true);
  w.set_requires_grad(true);
  Tensor targets = randint({N}, 0, int(V));
  CachingAllocator& alloc = backend(Device::cpu()).allocator();
  alloc.reset_peak();
  size_t base = alloc.stats().in_use_bytes;
  backward(linear_cross_entropy(h, w, targets, kIgnoreIndex, chunk));
  size_t fused = alloc.stats().peak_bytes - base;
  h.zero_grad();
  w.zero_grad();
  alloc.reset_peak();
  base = alloc.stats().in_use_bytes;
  backward(cross_entropy(linear(h, w), targets));
  size_t plain = alloc.stats().peak_bytes - base;
  MESSAGE("peak bytes: fused " << fused << ", unfused " << plain);
  CHECK(fused < plain / 2);
  CHECK(fused < size_t(N * V * 4));  // less than one full f32 logits matrix
}

// grad_seed: the gradients formed scaled by the seed backward will give, so that backward, given
// that seed, makes no pass over them (on a GPU the pass over lm_head's gradient was 0.5 ms of a
// llama3-1b step: bench/results/2026-12-04-gpu-run.md); given another seed, it still scales them
// right. A seed of 0 (no targets anywhere) is formed unscaled and scaled by the 0 given.
TEST_CASE("linear_cross_entropy's grad_seed: no pass in backward when the seed matches, the same gradients") {
  const int64_t N = 13, C = 7, V = 11;
  const Tensor h0 = randn({N, C}), w0 = randn({V, C});
  const Tensor targets = Tensor::from_ints({3, -100, 10, 0, 5, -100, 7, 1, 2, -100, 4, 9, 6}, {N});
  auto grads = [&](float promised, float seed, int64_t* passes) {
    Tensor h = h0.clone(), w = w0.clone();
    h.set_requires_grad(true);
    w.set_requires_grad(true);
    Tensor loss = linear_cross_entropy(h, w, targets, kIgnoreIndex, 4, Tensor(), {}, promised);
    OpTimer::totals().clear();
    OpTimer::enable(true);
    backward(loss, Tensor::full({}, seed, DType::f32));
    OpTimer::enable(false);
    *passes = OpTimer::totals().count("scale_by") ? OpTimer::totals()["scale_by"].calls : 0;
    OpTimer::totals().clear();
    return std::pair<Tensor, Tensor>{h.grad(), w.grad()};
  };
  // Formed with the seed or scaled by it after: one rounding apart at most.
  auto matches = [](const Tensor& got, const Tensor& want, float times) {
    std::vector<float> g = got.to_floats(), w = want.to_floats();
    REQUIRE(g.size() == w.size());
    float err = 0.0f, scale = 0.0f;
    for (size_t i = 0; i < g.size(); i++) {
      err = std::max(err, std::fabs(g[i] - times * w[i]));
      scale = std::max(scale, std::fabs(times * w[i]));
    }
    return err <= 1e-6f * scale;
  };
  int64_t passes = -1;
  const auto [dh, dw] = grads(1.0f, 0.37f, &passes);
  CHECK(passes == 2);  // d(hidden) and d(weight) scaled by 0.37 in backward
  const auto [dh_promised, dw_promised] = grads(0.37f, 0.37f, &passes);
  CHECK(passes == 0);
  CHECK(matches(dh_promised, dh, 1.0f));
  CHECK(matches(dw_promised, dw, 1.0f));
  const auto [dh_other, dw_other] = grads(0.37f, 0.74f, &passes);  // not the seed promised
  CHECK(passes == 2);
  CHECK(matches(dh_other, dh, 2.0f));
  CHECK(matches(dw_other, dw, 2.0f));
  const auto [dh_zero, dw_zero] = grads(0.0f, 0.0f, &passes);
  CHECK(dh_zero.to_floats() == std::vector<float>(N * C, 0.0f));
  CHECK(dw_zero.to_floats() == std::vector<float>(V * C, 0.0f));
}
