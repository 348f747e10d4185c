// Preference training's fused op: linear_sequence_logps (each sequence's summed log-likelihood,
// and what it forms beside: WPO's aligned sums, argmax hits, softmax entropies and mean logits)
// against a reference on the host, and the token sums TRL's token-level logs are formed from.
#include <algorithm>
#include <cmath>

#include "engine/backend.h"
#include "engine/ops.h"
#include "test/test_util.h"
#include "train/preference_metrics.h"

using namespace llm;
using namespace llm::testing;

namespace {

// The reference: log_softmax(h W^T)[target] summed per sequence, in f64 on the host.
// With `aligned`: WPO's sums too, of log p(target) - log sum_v p_v^2.
std::vector<double> reference_logps(const Tensor& h, const Tensor& w, const std::vector<int32_t>& targets,
                                    const std::vector<int32_t>& sequences, int64_t num_sequences,
                                    std::vector<double>* aligned = nullptr) {
  const std::vector<float> logits = linear(h, w).to_floats();
  const int64_t V = w.size(0);
  std::vector<double> out(num_sequences, 0.0);
  if (aligned) aligned->assign(num_sequences, 0.0);
  for (size_t i = 0; i < targets.size(); i++) {
    if (targets[i] == kIgnoreIndex) continue;
    double mx = -INFINITY, s = 0.0, squares = 0.0;
    for (int64_t j = 0; j < V; j++) mx = std::max<double>(mx, logits[i * V + j]);
    for (int64_t j = 0; j < V; j++) s += std::exp(logits[i * V + j] - mx);
    for (int64_t j = 0; j < V; j++) squares += std::exp(2.0 * (logits[i * V + j] - mx));
    const double logp = logits[i * V + targets[i]] - mx - std::log(s);
    out[sequences[i]] += logp;
    if (aligned) (*aligned)[sequences[i]] += logp - (std::log(squares) - 2.0 * std::log(s));
  }
  return out;
}

}  // namespace

TEST_CASE("scale_rows: each row by its factor") {
  Tensor x = randn({3, 5}), s = Tensor::from_floats({2.0f, -1.0f, 0.5f}, {3});
  Tensor out = Tensor::empty({3, 5}, DType::f32);
  backend(Device::cpu()).scale_rows(x, s, out);
  const std::vector<float> xv = x.to_floats(), ov = out.to_floats();
  for (int i = 0; i < 3; i++)
    for (int c = 0; c < 5; c++) CHECK(ov[i * 5 + c] == xv[i * 5 + c] * s.to_floats()[i]);
}

TEST_CASE("linear_sequence_logps: the summed log-likelihood of each sequence in any chunking; gradients") {
  const int64_t N = 13, C = 7, V = 11, S = 4;
  Tensor h = randn({N, C}), w = randn({V, C});
  const std::vector<int32_t> targets = {3, -100, 10, 0, 5, -100, 7, 1, 2, -100, 4, 9, 6};
  // Rows of four sequences, not contiguous (a packed pair interleaves nothing, but the op must
  // not care); an ignored row names a sequence it does not belong to.
  const std::vector<int32_t> sequences = {0, 3, 0, 1, 1, 2, 2, 3, 3, 0, 2, 1, 0};
  Tensor t = Tensor::from_ints(targets, {N}), seq = Tensor::from_ints(sequences, {N});
  std::vector<double> expected_aligned;
  const std::vector<double> expected = reference_logps(h, w, targets, sequences, S, &expected_aligned);
  for (int64_t chunk : {1, 4, 13, 0}) {
    CAPTURE(chunk);
    Tensor aligned;
    SequenceRowSums sums;
    sums.aligned = &aligned;
    const std::vector<float> got = linear_sequence_logps(h, w, t, seq, S, chunk, Tensor(), sums).to_floats();
    const std::vector<float> got_aligned = aligned.to_floats();
    for (int64_t s = 0; s < S; s++) {
      CHECK(got[s] == doctest::Approx(expected[s]).epsilon(1e-5));
      CHECK(got_aligned[s] == doctest::Approx(expected_aligned[s]).epsilon(1e-5));  // WPO's
    }
    check_gradients([&](const std::vector<Tensor>& in) {
      return linear_sequence_logps(in[0], in[1], t, seq, S, chunk);
    }, {h, w});
  }
  // A sequence with no counted row has log-likelihood 0; an ignored row's d(hidden) is exactly 0.
  Tensor hg = h.detach();
  hg.set_requires_grad(true);
  Tensor logps = linear_sequence_logps(hg, w, t, seq, S + 1, 4);
  CHECK(logps.to_floats()[S] == 0.0f);
  backward(logps, Tensor::from_floats({1.0f, -2.0f, 0.5f, 3.0f, 7.0f}, {S + 1}));
  const std::vector<float> dh = hg.grad().to_floats();
  for (int64_t i = 0; i < N; i++)
    if (targets[i] == kIgnoreIndex)
      for (int64_t c = 0; c < C; c++) CHECK(dh[i * C + c] == 0.0f);
  // Bad sequences and targets are refused, naming them.
  CHECK_THROWS_WITH(linear_sequence_logps(h, w, t, seq, 3), doctest::Contains("names sequence 3 of 3"));
  Tensor bad = Tensor::from_ints(std::vector<int32_t>(N, int32_t(V)), {N});
  CHECK_THROWS_WITH(linear_sequence_logps(h, w, bad, seq, S), doctest::Contains("outside the vocabulary"));
}

TEST_CASE("linear_sequence_logps: per sequence, the count of rows whose target is their logits' argmax") {
  const int64_t N = 13, C = 7, V = 11, S = 4;
  Tensor h = randn({N, C}), w = randn({V, C});
  const std::vector<float> logits = linear(h, w).to_floats();
  // Every other row's target its argmax, the rest the next token past it (never the argmax).
  std::vector<int32_t> targets(N);
  for (int64_t i = 0; i < N; i++) {
    const float* row = logits.data() + i * V;
    const int32_t top = static_cast<int32_t>(std::max_element(row, row + V) - row);
    targets[i] = i % 5 == 4 ? kIgnoreIndex : i % 2 == 0 ? top : (top + 1) % static_cast<int32_t>(V);
  }
  const std::vector<int32_t> sequences = {0, 3, 0, 1, 1, 2, 2, 3, 3, 0, 2, 1, 0};
  std::vector<float> expected(S, 0.0f);
  for (int64_t i = 0; i < N; i++)
    if (targets[i] != kIgnoreIndex && i % 2 == 0) expected[sequences[i]] += 1;
  Tensor t = Tensor::from_ints(targets, {N}), seq = Tensor::from_ints(sequences, {N});
  for (int64_t chunk : {1, 4, 0}) {
    CAPTURE(chunk);
    Tensor aligned, hits;  // WPO's pass doubles the logits: the hits are counted before it
    SequenceRowSums sums;
    sums.aligned = &aligned, sums.argmax_hits = &hits;
    const Tensor logps = linear_sequence_logps(h, w, t, seq, S, chunk, Tensor(), sums);
    CHECK(hits.to_floats() == expected);
    CHECK(logps.to_floats() == linear_sequence_logps(h, w, t, seq, S, chunk).to_floats());
  }
}

TEST_CASE("linear_sequence_logps: per sequence, its rows' softmax entropies and mean logits") {
  const int64_t N = 13, C = 7, V = 11, S = 4;
  Tensor h = randn({N, C}), w = randn({V, C});
  const std::vector<float> logits = linear(h, w).to_floats();
  const std::vector<int32_t> targets = {3, -100, 10, 0, 5, -100, 7, 1, 2, -100, 4, 9, 6};
  const std::vector<int32_t> sequences = {0, 3, 0, 1, 1, 2, 2, 3, 3, 0, 2, 1, 0};
  // The reference in f64 as TRL's entropy_from_logits writes it: -sum_v p_v log p_v.
  std::vector<double> entropy(S, 0.0), mean_logit(S, 0.0);
  for (int64_t i = 0; i < N; i++) {
    if (targets[i] == kIgnoreIndex) continue;
    const float* row = logits.data() + i * V;
    const double top = *std::max_element(row, row + V);
    double total = 0.0, sum = 0.0;
    for (int64_t j = 0; j < V; j++) sum += std::exp(row[j] - top), total += row[j];
    for (int64_t j = 0; j < V; j++) {
      const double logp = row[j] - top - std::log(sum);
      entropy[sequences[i]] -= std::exp(logp) * logp;
    }
    mean_logit[sequences[i]] += total / static_cast<double>(V);
  }
  Tensor t = Tensor::from_ints(targets, {N}), seq = Tensor::from_ints(sequences, {N});
  for (int64_t chunk : {1, 4, 0}) {
    CAPTURE(chunk);
    Tensor entropies, means, aligned;  // asked with WPO's, whose pass doubles the logits after them
    SequenceRowSums sums;
    sums.entropy = &entropies, sums.mean_logit = &means, sums.aligned = &aligned;
    const Tensor logps = linear_sequence_logps(h, w, t, seq, S, chunk, Tensor(), sums);
    for (int64_t s = 0; s < S; s++) {
      CHECK(entropies.to_floats()[s] == doctest::Approx(entropy[s]).epsilon(1e-5));
      CHECK(means.to_floats()[s] == doctest::Approx(mean_logit[s]).epsilon(1e-5));
    }
    CHECK(logps.to_floats() == linear_sequence_logps(h, w, t, seq, S, chunk).to_floats());
  }
  // One certain row has entropy 0; a logit of -inf adds nothing to the entropy (not 0 x -inf).
  Tensor certain = Tensor::from_floats({0.0f, -INFINITY, -INFINITY, 1.0f, 2.0f, -INFINITY}, {2, 3});
  Tensor lse = Tensor::from_floats({0.0f, 2.0f + std::log1p(std::exp(-1.0f))}, {2});
  Tensor row_entropy = Tensor::empty({2}, DType::f32), row_mean = Tensor::empty({2}, DType::f32);
  backend(Device::cpu()).softmax_stats(certain, lse, row_entropy, row_mean);
  const double p = 1.0 / (1.0 + std::exp(-1.0));  // the second row's 2 against its 1
  CHECK(row_entropy.to_floats()[0] == 0.0f);
  CHECK(row_entropy.to_floats()[1] == doctest::Approx(-p * std::log(p) - (1 - p) * std::log(1 - p)));
  CHECK(std::isinf(row_mean.to_floats()[0]));
}

TEST_CASE("pair_token_sums and kto_token_sums: each side's tokens; TRL's ratios of the ranks' sums") {
  // Two pairs, slot 2r chosen, 2r + 1 rejected, 4 + r the chosen targets of id 0 (split apart).
  const SlotTokenStats slots{{1, 2, 3, 4, 5, 6}, {0.5f, -1, 2, 3, -4, 8}, {1, 0, 2, 0, 1, 1}, {2, 3, 4, 5, 1, 1}};
  const TokenSums split = pair_token_sums(slots, 2, true);
  CHECK(split.tokens == 16);
  CHECK(split.entropy == 21);
  CHECK(split.chosen_tokens == 8);  // slots 0, 2, 4, 5
  CHECK(split.chosen_logits == 0.5 + 2 - 4 + 8);
  CHECK(split.chosen_hits == 5);
  CHECK(split.rejected_tokens == 8);  // slots 1, 3
  CHECK(split.rejected_logits == 2);
  CHECK(pair_token_sums(slots, 2, false).chosen_tokens == 6);
  // KTO's pair rows: a row's own completion in slot 2r (stride 2), its KL one beside it.
  const TokenSums kto = kto_token_sums(slots, {false, true, true}, 2);
  CHECK(kto.tokens == 2 + 4 + 1);
  CHECK(kto.entropy == 1 + 3 + 5);
  CHECK(kto.chosen_tokens == 5);
  CHECK(kto.chosen_logits == 2 - 4);
  CHECK(kto.rejected_tokens == 2);
  CHECK(kto.rejected_logits == 0.5);
  // Two ranks' sums of a micro-batch give one ratio each (not the mean of the ranks' ratios).
  TokenSums ranks = split;
  ranks.add(pair_token_sums(slots, 2, false));
  PreferenceMetrics m;
  m.add_token_ratios(ranks, PreferenceLog::pairs);
  m.add_token_ratios(TokenSums{}, PreferenceLog::pairs);  // no rank had a batch: nothing
  const PreferenceMetrics means = m.means();
  CHECK(means.entropy == doctest::Approx(31.0 / 30));
  CHECK(means.logits_chosen == doctest::Approx((6.5 + 2.5) / 14));
  CHECK(means.token_accuracy == doctest::Approx(8.0 / 14));
  CHECK(m.entropy_terms == 1);
  // KTO's logits/* count only micro-batches with tokens on that side; DPO's count every one.
  TokenSums chosen_only;
  chosen_only.batches = 1, chosen_only.tokens = chosen_only.chosen_tokens = 4, chosen_only.chosen_logits = 2;
  PreferenceMetrics k, p;
  k.add_token_ratios(chosen_only, PreferenceLog::kto);
  p.add_token_ratios(chosen_only, PreferenceLog::pairs);
  CHECK(k.logits_rejected_terms == 0);
  CHECK(k.token_accuracy_terms == 0);
  CHECK(p.logits_rejected_terms == 1);
  CHECK(p.logits_rejected == 0);
  const std::string kto_json = preference_json(k.means(), PreferenceLog::kto, "eval_");
  CHECK(kto_json.find("\"eval_logits/chosen\": 0.5") != std::string::npos);
  CHECK(kto_json.find("logits/rejected") == std::string::npos);
  // Without token ratios (simpo, orpo) none is named.
  PreferenceMetrics none;
  none.pairs = 1;
  CHECK(preference_json(none.means(), PreferenceLog::pairs, "").find("entropy") == std::string::npos);
}
