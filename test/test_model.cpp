// Llama model: HF names and shapes, gradients end to end, recompute equivalence, learning.
#include <cmath>
#include <cstring>

#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/optimizer.h"
#include "model/generate.h"
#include "model/llama.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

namespace {
LlamaConfig small_config(bool tied) {
  LlamaConfig c;
  c.hidden_size = 16, c.intermediate_size = 24, c.num_hidden_layers = 3;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.vocab_size = 19;
  c.rope = {10000.0f, 4.0f, 1.0f, 4.0f, 16};
  c.tie_word_embeddings = tied;
  c.initializer_range = 0.2f;
  return c;
}

}  // namespace

TEST_CASE("parameters: HF names, shapes and count; tied and untied") {
  for (bool tied : {true, false}) {
    LlamaModel model(small_config(tied), Device::cpu(), 1);
    auto params = model.parameters();
    int64_t count = 0;
    for (auto& p : params) count += p.tensor->numel();
    CHECK(count == model.config().num_parameters());
    CHECK(params[0].name == "model.embed_tokens.weight");
    CHECK(params[2].name == "model.layers.0.self_attn.q_proj.weight");
    CHECK(params[3].tensor->shape() == Shape{2 * 4, 16});  // k_proj: (Hkv * D, C)
    CHECK(params.back().name == (tied ? "model.norm.weight" : "lm_head.weight"));
    CHECK(LlamaModel::is_norm_weight("model.layers.0.post_attention_layernorm.weight"));
    CHECK_FALSE(LlamaModel::is_norm_weight("model.layers.0.mlp.up_proj.weight"));
    // HF's Trainer decays neither the norms' weights nor a bias.
    CHECK_FALSE(LlamaModel::decays("model.norm.weight"));
    CHECK_FALSE(LlamaModel::decays(LlamaModel::kScoreBiasName));
    CHECK(LlamaModel::decays(LlamaModel::kScoreHeadName));
  }
}

TEST_CASE("a config whose parameter count does not fit in 64 bits is refused, not wrapped") {
  LlamaConfig c = small_config(true);
  c.hidden_size = c.intermediate_size = int64_t(1) << 32;  // 2^64 and more per layer
  CHECK(c.validate().find("the parameter count does not fit in 64 bits") == 0);
  CHECK_THROWS_WITH(c.num_parameters(), doctest::Contains("overflows 64 bits"));
}

TEST_CASE("Llama-3.2-1B preset has 1.24B parameters (as HF reports)") {
  LlamaConfig c = *llama_preset("llama3-1b");
  CHECK(c.num_parameters() == 1235814400);
  CHECK(llama_preset("llama3-8b")->num_parameters() == 8030261248);
  CHECK(llama_preset("llama3-70b")->num_parameters() == 70553706496);
}

// MFU's numerator (llm_bench step): 6 FLOPs a token for each weight a GEMM multiplies by, counted
// here from the shapes: the 7 linears and 2 norms of each layer, the final norm, lm_head; an
// untied input embedding is a lookup and does not count. Plus attention's 12 x L x C x S.
TEST_CASE("training FLOPs per token: every GEMM weight, not an untied embedding's lookup") {
  for (bool tied : {true, false}) {
    LlamaModel model(small_config(tied), Device::cpu(), 1);
    const double C = 16, F = 24, kv = 2 * 4, V = 19, L = 3, S = 32;
    const double per_layer = C * C + 2 * kv * C + C * C + 3 * C * F + 2 * C;  // q, k, v, o, MLP, norms
    const double expected = 6 * (L * per_layer + C + V * C) + 12 * L * C * S;
    CHECK(model.training_flops_per_token(32) == doctest::Approx(expected).epsilon(1e-12));
  }
}

TEST_CASE("loss gradients through the whole model match finite differences") {
  LlamaModel model(small_config(false), Device::cpu(), 2);
  TokenBatch b = random_batch(2, 5, 19);
  for (auto& p : model.parameters()) {
    if (p.name != "model.layers.1.self_attn.k_proj.weight" && p.name != "lm_head.weight" &&
        p.name != "model.layers.2.input_layernorm.weight")
      continue;
    CAPTURE(p.name);
    for (auto& q : model.parameters()) q.tensor->zero_grad();  // each check runs backward once
    Tensor* t = p.tensor;
    check_gradients([&](const std::vector<Tensor>& in) {
      Tensor saved = *t;
      *t = in[0];
      Tensor l = model.loss(b.ids, b.targets, b.positions);
      *t = saved;
      return l;
    }, {*t});
  }
}

TEST_CASE("recompute every 1 or 2 layers: bit-identical loss and gradients") {
  LlamaModel model(small_config(true), Device::cpu(), 3);
  TokenBatch b = random_batch(2, 9, 19);
  std::vector<std::vector<float>> reference;
  float reference_loss = 0;
  for (int64_t every : {0, 1, 2}) {
    for (auto& p : model.parameters()) p.tensor->zero_grad();
    Tensor loss = model.loss(b.ids, b.targets, b.positions, {every});
    backward(loss);
    float l = loss.item();
    std::vector<std::vector<float>> grads;
    for (auto& p : model.parameters()) grads.push_back(p.tensor->grad().to_floats());
    if (every == 0) {
      reference = grads;
      reference_loss = l;
      continue;
    }
    CAPTURE(every);
    CHECK(std::memcmp(&l, &reference_loss, sizeof l) == 0);
    for (size_t i = 0; i < grads.size(); i++)
      CHECK(std::memcmp(grads[i].data(), reference[i].data(), grads[i].size() * sizeof(float)) == 0);
  }
}

TEST_CASE("NEFTune: noise on the embeddings only with gradients, seeded, the same under recompute") {
  LlamaModel model(small_config(false), Device::cpu(), 3);
  const TokenBatch b = random_batch(2, 9, 19);
  ForwardOptions noisy;
  noisy.neftune_noise_alpha = 5.0f, noisy.dropout_seed = 11;
  {  // Evaluation and sampling (no gradients) see the plain embeddings, as transformers' eval mode.
    NoGradGuard no_grad;
    CHECK(model.logits(b.ids, b.positions, noisy).to_floats() == model.logits(b.ids, b.positions).to_floats());
  }
  const float plain = model.loss(b.ids, b.targets, b.positions).item();
  const float first = model.loss(b.ids, b.targets, b.positions, noisy).item();
  CHECK(first != plain);
  CHECK(model.loss(b.ids, b.targets, b.positions, noisy).item() == first);  // the seed's own noise
  ForwardOptions other = noisy, segments = noisy;
  other.dropout_seed = 12;
  CHECK(model.loss(b.ids, b.targets, b.positions, other).item() != first);
  segments.recompute_every_n_layers = 1;
  CHECK(model.loss(b.ids, b.targets, b.positions, segments).item() == first);
}

TEST_CASE("a training step reads nothing from the device but its gradient norm") {
  // On a GPU every host read waits for the device's queue; the CPU counts them all the same.
  LlamaModel model(small_config(false), Device::cpu(), 8);
  model.add_lora({4, 8.0f, 0.1f, {"q_proj", "v_proj"}}, 8);  // dropout: its masks too
  std::vector<OptimParam> params;
  for (auto& p : model.trainable_parameters()) params.push_back({p.name, p.tensor, true});
  AdamW opt(params, {});
  TokenBatch b = random_batch(2, 8, 19);
  ForwardOptions plain, recompute, packed;
  recompute.recompute_every_n_layers = 2;
  packed.attention = AttentionKind::mem_efficient;
  packed.doc_ids = Tensor::from_ints({0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 2, 2, 2, 2}, {2, 8});
  for (ForwardOptions* fo : {&plain, &recompute, &packed}) {
    fo->targets_host = b.targets;  // as the trainer keeps each batch's
    for (auto& p : params) p.param->zero_grad();
    const uint64_t before = host_reads();
    Tensor loss = model.loss(b.ids, b.targets, b.positions, *fo);
    backward(loss, Tensor::full({}, 0.5f, DType::f32));  // the micro-batch's weight, as the trainer's
    CHECK(host_reads() == before);
    opt.step(1e-3f, 1.0);  // the norm (clipping, the non-finite check): one read for all params
    CHECK(host_reads() == before + 1);
  }
}

TEST_CASE("a few AdamW steps memorise a fixed batch") {
  LlamaConfig c = small_config(true);
  c.initializer_range = 0.02f;
  LlamaModel model(c, Device::cpu(), 4);
  TokenBatch b = random_batch(2, 8, 19);
  std::vector<OptimParam> params;
  std::vector<Tensor*> tensors;
  for (auto& p : model.parameters()) {
    params.push_back({p.name, p.tensor, !LlamaModel::is_norm_weight(p.name)});
    tensors.push_back(p.tensor);
  }
  AdamW opt(params, {0.9f, 0.999f, 1e-8f, 0.0f});
  float first = 0, last = 0;
  for (int step = 0; step < 30; step++) {
    for (Tensor* t : tensors) t->zero_grad();
    Tensor loss = model.loss(b.ids, b.targets, b.positions);
    backward(loss);
    opt.step(1e-2f, 1.0);
    (step == 0 ? first : last) = loss.item();
  }
  CHECK(first == doctest::Approx(std::log(19.0)).epsilon(0.05));  // uniform at init
  CHECK(last < 0.3f * first);
}

TEST_CASE("every attention kind matches eager; S2 groups its rows with and without gradients") {
  LlamaModel model(small_config(true), Device::cpu(), 5);
  TokenBatch b = random_batch(2, 16, 19);
  Tensor eager = model.logits(b.ids, b.positions);
  for (AttentionKind kind : {AttentionKind::flash, AttentionKind::mem_efficient, AttentionKind::cudnn}) {
    ForwardOptions opt;
    opt.attention = kind;
    CHECK(max_abs_diff(model.logits(b.ids, b.positions, opt), eager) < 1e-5f);
  }
  // sdp_attention on the CPU is the flash tiles: the same logits and gradients, bit for bit.
  ForwardOptions flash, cudnn;
  flash.attention = AttentionKind::flash;
  cudnn.attention = AttentionKind::cudnn;
  auto loss_and_grad = [&](const ForwardOptions& opt) {
    for (const ParamRef& p : model.parameters()) p.tensor->zero_grad();
    Tensor loss = model.loss(b.ids, b.targets, b.positions, opt);
    backward(loss);
    std::vector<float> all{loss.item()};
    for (const ParamRef& p : model.parameters()) {
      std::vector<float> g = p.tensor->grad().to_floats();
      all.insert(all.end(), g.begin(), g.end());
    }
    return all;
  };
  CHECK(loss_and_grad(cudnn) == loss_and_grad(flash));
  ForwardOptions s2;
  s2.attention = AttentionKind::s2;
  s2.s2_group_size = 4;
  const Tensor grouped = model.logits(b.ids, b.positions, s2);
  CHECK(max_abs_diff(grouped, eager) > 1e-3f);  // grouped while training
  NoGradGuard no_grad;  // and in evaluation, as Axolotl's patched attention
  CHECK(max_abs_diff(model.logits(b.ids, b.positions, s2), grouped) == 0.0f);
}

TEST_CASE("sample packing: a packed row gives each document the logits it has alone") {
  LlamaModel model(small_config(true), Device::cpu(), 6);
  const std::vector<int32_t> doc_a{18, 3, 4, 5, 6}, doc_b{18, 7, 8, 9};  // 18 plays BOS
  std::vector<int32_t> row(doc_a);
  row.insert(row.end(), doc_b.begin(), doc_b.end());
  const int64_t S = static_cast<int64_t>(row.size());
  Tensor ids = Tensor::from_ints(row, {1, S});
  Tensor doc_ids = Tensor::from_ints({0, 0, 0, 0, 0, 1, 1, 1, 1}, {1, S});
  Tensor positions = Tensor::from_ints({0, 1, 2, 3, 4, 0, 1, 2, 3}, {1, S});
  ForwardOptions packed;
  packed.attention = AttentionKind::mem_efficient;
  packed.doc_ids = doc_ids;
  std::vector<float> together = model.logits(ids, positions, packed).to_floats();
  std::vector<float> alone = model.logits(Tensor::from_ints(doc_b, {1, 4}),
                                          Tensor::from_ints({0, 1, 2, 3}, {1, 4})).to_floats();
  const int64_t V = 19;
  for (int64_t i = 0; i < 4 * V; i++) CHECK(together[5 * V + i] == doctest::Approx(alone[i]).epsilon(1e-5));
}

TEST_CASE("sampling with the key/value cache picks what the whole uncached forward picks") {
  LlamaModel model(small_config(true), Device::cpu(), 5);
  const std::vector<int32_t> prompt{3, 7, 1};
  SampleOptions opt;  // greedy, the context never full
  opt.max_new_tokens = 12, opt.context = 64, opt.temperature = 0.0f;
  const std::vector<int32_t> cached = sample(model, prompt, opt);
  REQUIRE(cached.size() == 12);
  // The whole sequence in one forward: each position's argmax is the token after it.
  std::vector<int32_t> seq = prompt;
  seq.insert(seq.end(), cached.begin(), cached.end() - 1);
  const int64_t S = static_cast<int64_t>(seq.size()), V = model.config().vocab_size;
  std::vector<int32_t> pos(S);
  for (int64_t i = 0; i < S; i++) pos[i] = static_cast<int32_t>(i);
  std::vector<float> logits;
  {
    NoGradGuard no_grad;
    logits = model.logits(Tensor::from_ints(seq, {1, S}), Tensor::from_ints(pos, {1, S})).to_floats();
  }
  for (size_t t = 0; t < cached.size(); t++) {
    const float* row = logits.data() + (prompt.size() - 1 + t) * V;
    CHECK(std::max_element(row, row + V) - row == cached[t]);
  }
  // A context of 6 fills after 3 new tokens; from then on the window slides, uncached. Before
  // it slides, the tokens are the same as above.
  opt.context = 6;
  const std::vector<int32_t> sliding = sample(model, prompt, opt);
  REQUIRE(sliding.size() == 12);
  CHECK(std::equal(sliding.begin(), sliding.begin() + 4, cached.begin()));
}

// SSMax scales each query before attention, so every kernel computes the same scaled scores; the
// factor reads each token's position, so a packed document's logits are its logits alone, and
// sampling's cached queries (one position at a time) get the factor the whole forward gives.
TEST_CASE("scaling_softmax (SSMax): every kernel, packed documents and the key/value cache agree") {
  LlamaModel model(small_config(true), Device::cpu(), 7);
  TokenBatch b = random_batch(2, 16, 19);
  ForwardOptions eager;
  eager.ssmax = {true, 0.8f, 0.1f};
  const Tensor with = model.logits(b.ids, b.positions, eager);
  CHECK(max_abs_diff(with, model.logits(b.ids, b.positions)) > 1e-3f);
  for (AttentionKind kind : {AttentionKind::flash, AttentionKind::mem_efficient, AttentionKind::cudnn}) {
    ForwardOptions opt = eager;
    opt.attention = kind;
    CHECK(max_abs_diff(model.logits(b.ids, b.positions, opt), with) < 1e-5f);
  }
  const std::vector<int32_t> doc_b{18, 7, 8, 9};
  ForwardOptions packed = eager;
  packed.attention = AttentionKind::mem_efficient;
  packed.doc_ids = Tensor::from_ints({0, 0, 0, 1, 1, 1, 1}, {1, 7});
  const std::vector<float> together = model.logits(Tensor::from_ints({18, 3, 4, 18, 7, 8, 9}, {1, 7}),
                                                   Tensor::from_ints({0, 1, 2, 0, 1, 2, 3}, {1, 7}), packed).to_floats();
  const std::vector<float> alone = model.logits(Tensor::from_ints(doc_b, {1, 4}), Tensor::from_ints({0, 1, 2, 3}, {1, 4}),
                                                eager).to_floats();
  for (int64_t i = 0; i < 4 * 19; i++) CHECK(together[3 * 19 + i] == doctest::Approx(alone[i]).epsilon(1e-5));
  SampleOptions opt;
  opt.max_new_tokens = 8, opt.context = 64, opt.temperature = 0.0f, opt.ssmax = eager.ssmax;
  const std::vector<int32_t> prompt{3, 7, 1}, cached = sample(model, prompt, opt);
  std::vector<int32_t> seq = prompt, pos;
  seq.insert(seq.end(), cached.begin(), cached.end() - 1);
  for (size_t i = 0; i < seq.size(); i++) pos.push_back(static_cast<int32_t>(i));
  const int64_t S = static_cast<int64_t>(seq.size());
  NoGradGuard no_grad;
  const std::vector<float> logits = model.logits(Tensor::from_ints(seq, {1, S}), Tensor::from_ints(pos, {1, S}), eager).to_floats();
  for (size_t t = 0; t < cached.size(); t++) {
    const float* row = logits.data() + (prompt.size() - 1 + t) * 19;
    CHECK(std::max_element(row, row + 19) - row == cached[t]);
  }
}

// Axolotl's inference command samples through HF's processors: repetition_penalty, temperature,
// top_k, top_p, in that order. The distributions below are transformers 5.25's
// (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper,
// then softmax) on these logits, ids 3, 1, 8 and 7 seen (3 twice).
TEST_CASE("next_token_probabilities: HF's repetition penalty, temperature, top-k and top-p") {
  const std::vector<float> logits{2.0f, -1.5f, 0.5f, 3.0f, -0.25f, 1.0f, 2.5f, -3.0f, 0.0f, 1.75f};
  const std::vector<int32_t> seen{3, 1, 3, 8, 7};
  SampleOptions opt;
  opt.repetition_penalty = 1.1f, opt.temperature = 0.9f, opt.top_k = 6, opt.top_p = 0.8f;
  const std::vector<double> narrow{0.17409557104110718, 0, 0, 0.3906005024909973, 0, 0, 0.30343273282051086, 0, 0,
                                   0.1318713277578354};
  const std::vector<double> p = next_token_probabilities(logits, seen, opt);
  REQUIRE(p.size() == narrow.size());
  for (size_t i = 0; i < p.size(); i++) CHECK(p[i] == doctest::Approx(narrow[i]).epsilon(1e-6));
  // Axolotl's own settings: top_k 40 above the vocabulary keeps every id; top_p 0.95.
  opt.top_k = 40, opt.top_p = 0.95f;
  const std::vector<double> wide{0.15969234704971313, 0, 0.030161987990140915, 0.35828548669815063, 0,
                                 0.05256960168480873, 0.2783292531967163, 0, 0, 0.12096139788627625};
  const std::vector<double> q = next_token_probabilities(logits, seen, opt);
  for (size_t i = 0; i < q.size(); i++) CHECK(q[i] == doctest::Approx(wide[i]).epsilon(1e-6));
  // Without processors: the softmax of logits / temperature.
  SampleOptions plain;
  plain.temperature = 1.0f;
  const std::vector<double> r = next_token_probabilities(logits, seen, plain);
  double sum = 0;
  for (float z : logits) sum += std::exp(static_cast<double>(z));
  for (size_t i = 0; i < r.size(); i++) CHECK(r[i] == doctest::Approx(std::exp(static_cast<double>(logits[i])) / sum).epsilon(1e-9));
}
