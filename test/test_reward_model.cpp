// Reward models (reward_model: true): the Bradley-Terry loss, the sequence classifier's score head
// (its gradients, its pooling, its HF files), bradley_terry.chat_template rows, the config's rules,
// and llm_train runs whose first loss is recomputed here sequence by sequence, resumed and exported.
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/user_error.h"
#include "io/bradley_terry.h"
#include "io/safetensors.h"
#include "model/hf_checkpoint.h"
#include "test/chat_tokenizer.h"
#include "test/classifier_fixture.h"
#include "test/test_util.h"
#include "train/preference_loss.h"

using namespace llm;
using namespace llm::testing;
using nlohmann::json;

namespace {

LlamaConfig classifier_config() {
  LlamaConfig c;
  c.hidden_size = 16, c.intermediate_size = 24, c.num_hidden_layers = 2;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.vocab_size = 19;
  c.tie_word_embeddings = false;
  c.initializer_range = 0.2f;
  c.num_labels = 1;
  return c;
}

}  // namespace

TEST_CASE("bradley_terry_loss: -log sigmoid(chosen - rejected), its gradients, stable far out") {
  const PairLoss p = bradley_terry_loss(0.7, -0.3);
  CHECK(p.loss == doctest::Approx(std::log1p(std::exp(-1.0))).epsilon(1e-12));
  const double eps = 1e-6;
  CHECK(p.d_chosen == doctest::Approx((bradley_terry_loss(0.7 + eps, -0.3).loss - bradley_terry_loss(0.7 - eps, -0.3).loss) /
                                      (2 * eps)).epsilon(1e-6));
  CHECK(p.d_rejected == doctest::Approx(-p.d_chosen).epsilon(1e-12));
  CHECK(p.reward_chosen == 0.7);
  CHECK(p.reward_rejected == -0.3);
  CHECK(bradley_terry_loss(0.0, 0.0).loss == doctest::Approx(std::log(2.0)));
  // Far apart: no overflow; the loss is then the gap (or 0).
  CHECK(bradley_terry_loss(-400.0, 400.0).loss == doctest::Approx(800.0));
  CHECK(bradley_terry_loss(400.0, -400.0).loss == doctest::Approx(0.0));
  CHECK(std::isfinite(bradley_terry_loss(-400.0, 400.0).d_chosen));
  // center_rewards_coefficient: plus center (chosen + rejected)^2, and its gradient in each score.
  const PairLoss centred = bradley_terry_loss(0.7, -0.1, 0.25);
  CHECK(centred.loss == doctest::Approx(std::log1p(std::exp(-0.8)) + 0.25 * 0.36).epsilon(1e-12));
  const auto centred_loss = [](double c, double r) { return bradley_terry_loss(c, r, 0.25).loss; };
  CHECK(centred.d_chosen == doctest::Approx((centred_loss(0.7 + eps, -0.1) - centred_loss(0.7 - eps, -0.1)) / (2 * eps)).epsilon(1e-6));
  CHECK(centred.d_rejected == doctest::Approx((centred_loss(0.7, -0.1 + eps) - centred_loss(0.7, -0.1 - eps)) / (2 * eps)).epsilon(1e-6));
}

TEST_CASE("scores: the score head on the pooled rows, as LlamaForSequenceClassification pools its logits") {
  LlamaModel model(classifier_config(), Device::cpu(), 5);
  const std::vector<std::string> names = [&] {
    std::vector<std::string> out;
    for (const ParamRef& p : model.parameters()) out.push_back(p.name);
    return out;
  }();
  CHECK(names.back() == "score.weight");
  CHECK(std::find(names.begin(), names.end(), "lm_head.weight") == names.end());
  CHECK(model.parameters().back().tensor->shape() == Shape{1, 16});
  CHECK(model.config().num_parameters() == 19 * 16 + 16 + 2 * (2 * 16 * 16 + 2 * 16 * 8 + 3 * 16 * 24 + 2 * 16) + 16);
  const TokenBatch b = random_batch(2, 6, 19);
  const Tensor rows = Tensor::from_ints({5, 2, 9}, {3});
  NoGradGuard no_grad;
  const std::vector<float> scores = model.scores(b.ids, b.positions, rows).to_floats();
  // transformers scores every position, then reads the pooled ones.
  const std::vector<float> all = model.logits_from_hidden(model.hidden_states(b.ids, b.positions)).to_floats();
  REQUIRE(scores.size() == 3);
  CHECK(scores[0] == doctest::Approx(all[5]).epsilon(1e-5));
  CHECK(scores[1] == doctest::Approx(all[2]).epsilon(1e-5));
  CHECK(scores[2] == doctest::Approx(all[9]).epsilon(1e-5));
}

TEST_CASE("scores: gradients through the score head and the blocks match finite differences") {
  LlamaModel model(classifier_config(), Device::cpu(), 6);
  const TokenBatch b = random_batch(2, 5, 19);
  const Tensor rows = Tensor::from_ints({4, 7, 0}, {3});
  for (auto& p : model.parameters()) {
    if (p.name != "score.weight" && p.name != "model.layers.0.mlp.up_proj.weight" && p.name != "model.norm.weight")
      continue;
    CAPTURE(p.name);
    for (auto& q : model.parameters()) q.tensor->zero_grad();
    Tensor* t = p.tensor;
    check_gradients([&](const std::vector<Tensor>& in) {
      Tensor saved = *t;
      *t = in[0];
      Tensor s = model.scores(b.ids, b.positions, rows);
      *t = saved;
      return s;
    }, {*t});
  }
}

TEST_CASE("HF files: a causal LM loads as a classifier (lm_head ignored, score drawn), saved as LlamaForSequenceClassification") {
  TempDir dir("reward_hf");
  LlamaConfig causal = classifier_config();
  causal.num_labels = 0;
  LlamaModel base(causal, Device::cpu(), 8);
  save_hf_model(base, (dir.path / "base").string(), DType::f32, {1, 2});
  LlamaModel classifier(classifier_config(), Device::cpu(), 99);
  CHECK(load_hf_weights(classifier, (dir.path / "base").string(), {}, 13) == 21);
  for (const ParamRef& p : classifier.parameters()) {
    CAPTURE(p.name);
    const std::vector<float> got = p.tensor->to_floats();
    if (p.name == "score.weight") {
      CHECK(got == classifier.draw_score_head(13).to_floats());
      continue;
    }
    for (const ParamRef& q : base.parameters())
      if (q.name == p.name) CHECK(got == q.tensor->to_floats());
  }
  // The classifier's own files: score.weight, no lm_head; transformers' class, labels and pad id.
  const std::string saved = (dir.path / "classifier").string();
  save_hf_model(classifier, saved, DType::f32, {1, 2, 3});
  const SafetensorsDir files(saved);
  REQUIRE(files.find("score.weight"));
  CHECK(files.find("score.weight")->shape == Shape{1, 16});
  CHECK(!files.find("lm_head.weight"));
  const json config = json::parse(read_file(saved + "/config.json"));
  CHECK(config.at("architectures") == json::array({"LlamaForSequenceClassification"}));
  CHECK(config.at("id2label") == json{{"0", "LABEL_0"}});
  CHECK(config.at("label2id") == json{{"LABEL_0", 0}});
  CHECK(config.at("pad_token_id") == 3);
  CHECK(config.at("tie_word_embeddings") == false);
  // A causal LM cannot read a classifier: one line saying what the file is.
  LlamaModel causal_again(causal, Device::cpu(), 1);
  CHECK_THROWS_WITH_AS(load_hf_weights(causal_again, saved), doctest::Contains("trained with reward_model: true"), UserError);
  // Read back, the score head is the file's (nothing drawn).
  LlamaModel again(classifier_config(), Device::cpu(), 1);
  load_hf_weights(again, saved, {}, 77);
  CHECK(again.parameters().back().tensor->to_floats() == classifier.parameters().back().tensor->to_floats());
}

TEST_CASE("bradley_terry.chat_template: each row's chosen and rejected conversation under the template, cut to sequence_len") {
  TempDir dir("reward_rows");
  const std::string path = (dir.path / "pairs.jsonl").string();
  write_file(path, "{\"system\": \"Be brief.\", \"input\": \"hi\", \"chosen\": \"yes\", \"rejected\": \"no\"}\n"
                   "{\"system\": null, \"input\": \"q\", \"chosen\": \"a long answer that runs well past the limit\", \"rejected\": \"b\"}\n"
                   "{\"system\": \"\", \"input\": \"r\", \"chosen\": \"c\", \"rejected\": \"d\"}\n");
  DatasetSpec spec;
  spec.path = path, spec.type = kBradleyTerryType, spec.chat_template = "llama3";
  DataConfig config;
  config.sequence_len = 60;
  std::vector<Example> out;
  ExampleStats stats;
  append_bradley_terry_examples(spec, kFake, config, out, stats);
  REQUIRE(out.size() == 6);
  CHECK(stats.documents == 3);
  CHECK(kFake.decode(out[0].tokens) == "<bos><h>system</h>\n\nBe brief.<eot><h>user</h>\n\nhi<eot><h>assistant</h>\n\nyes<eot>");
  CHECK(kFake.decode(out[1].tokens) == "<bos><h>system</h>\n\nBe brief.<eot><h>user</h>\n\nhi<eot><h>assistant</h>\n\nno<eot>");
  // A null system opens no system turn; an empty one an empty turn (Axolotl's strategy skips it, and
  // its chat_template parent then inserts the row's system field before the user's turn).
  CHECK(kFake.decode(out[3].tokens) == "<bos><h>user</h>\n\nq<eot><h>assistant</h>\n\nb<eot>");
  CHECK(kFake.decode(out[5].tokens) == "<bos><h>system</h>\n\n<eot><h>user</h>\n\nr<eot><h>assistant</h>\n\nd<eot>");
  // Longer than sequence_len: the start is kept (24 tokens before the answer, 36 of its 44).
  const std::string answer = "a long answer that runs well past the limit";
  CHECK(out[2].tokens.size() == 60);
  CHECK(kFake.decode(out[2].tokens) == "<bos><h>user</h>\n\nq<eot><h>assistant</h>\n\n" + answer.substr(0, 36));
  CHECK(stats.truncated == 1);
  for (const Example& ex : out)
    CHECK(std::all_of(ex.labels.begin(), ex.labels.end(), [](int32_t l) { return l == kIgnoreIndex; }));
  // A row without its strings: one line naming the file, the row and the field.
  write_file(path, "{\"input\": \"hi\", \"chosen\": \"yes\"}\n");
  CHECK_THROWS_WITH_AS(append_bradley_terry_examples(spec, kFake, config, out, stats),
                       doctest::Contains("pairs.jsonl:1: "), UserError);
}

namespace {

// Pairs whose chosen and rejected answers differ in kind, so a few steps separate them.
std::string pair_rows(int count) {
  std::string rows;
  for (int i = 0; i < count; i++)
    rows += "{\"system\": \"" + std::string(i % 2 ? "Be kind." : "") + "\", \"input\": \"hello " + std::to_string(i) +
            "\", \"chosen\": \"world " + std::string(1 + i % 4, '1') + "\", \"rejected\": \"hell " +
            std::string(1 + i % 3, '2') + " no\"}\n";
  return rows;
}

// The pairs under Llama 3's template, trained as a reward model.
struct RewardWorkspace : ClassifierWorkspace {
  RewardWorkspace()
      : ClassifierWorkspace("reward_run", pair_rows(8),
                            "reward_model: true\nmodel_type: AutoModelForSequenceClassification\nnum_labels: 1\n"
                            "chat_template: llama3\n",
                            kBradleyTerryType) {}
};

}  // namespace

TEST_CASE("reward_model: the first loss and metrics as TRL's RewardTrainer's, each sequence scored alone here") {
  RewardWorkspace ws;
  const Run r = run_train(ws.config(ws.keys_at(ws.path("out"))));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("data: 8 reward pairs -> 8 kept") != std::string::npos);
  CHECK(r.output.find("the score head is drawn normal(0, 0.02) from seed 7") != std::string::npos);
  CHECK(r.output.find("a sequence classifier: score head of 1 label(s), no lm_head") != std::string::npos);
  CHECK(r.output.find("reference log-likelihoods") == std::string::npos);  // DPO's, not a reward model's
  // The tokenizer names no pad token: TRL pads with EOS, and pools at the last token that is not it.
  CHECK(r.output.find("reward_model: the tokenizer names no pad token: <|end_of_text|> pads") != std::string::npos);
  const std::vector<json> steps = loss_records(ws.path("out/metrics.jsonl"));
  REQUIRE(steps.size() == 4);
  // The starting classifier as the run made it, and every pair scored one sequence at a time at its
  // last non-pad (EOS) token: no shared rows, no pooling table.
  const std::unique_ptr<LlamaModel> model = ws.starting_classifier(1, false);
  const std::unique_ptr<Tokenizer> tokenizer = ws.tokenizer();
  DatasetSpec spec;
  spec.type = kBradleyTerryType, spec.chat_template = "llama3";
  const std::vector<Example> examples = ws.examples(spec, append_bradley_terry_examples);
  REQUIRE(examples.size() == 16);
  NoGradGuard no_grad;
  std::vector<double> scores;
  for (const Example& ex : examples) {
    const int64_t n = static_cast<int64_t>(ex.tokens.size());
    int32_t last = 0;
    for (int64_t i = 0; i < n; i++)
      if (ex.tokens[i] != tokenizer->eos()) last = static_cast<int32_t>(i);
    scores.push_back(model->scores(Tensor::from_ints(ex.tokens, {1, n}), positions_of(n), Tensor::from_ints({last}, {1})).item());
  }
  double loss = 0, accuracy = 0, margin = 0, mean = 0;
  for (size_t p = 0; p < 8; p++) {
    const double z = scores[2 * p] - scores[2 * p + 1];
    loss += std::log1p(std::exp(-z)) / 8, accuracy += (z > 0 ? 1.0 : 0.0) / 8, margin += z / 8;
    mean += (scores[2 * p] + scores[2 * p + 1]) / 16;
  }
  CHECK(steps[0].at("loss").get<double>() == doctest::Approx(loss).epsilon(1e-5));
  CHECK(steps[0].at("accuracy").get<double>() == doctest::Approx(accuracy));
  CHECK(steps[0].at("margin").get<double>() == doctest::Approx(margin).epsilon(1e-4));
  CHECK(steps[0].at("mean_reward").get<double>() == doctest::Approx(mean).epsilon(1e-4));
  // One micro-batch of the 8 pairs: its lowest and highest of the 16 scores.
  CHECK(steps[0].at("min_reward").get<double>() == doctest::Approx(*std::min_element(scores.begin(), scores.end())).epsilon(1e-4));
  CHECK(steps[0].at("max_reward").get<double>() == doctest::Approx(*std::max_element(scores.begin(), scores.end())).epsilon(1e-4));
  // TRL's num_tokens: the attention masks' sum so far, every step the 16 sequences' tokens.
  int64_t tokens = 0;
  for (const Example& ex : examples) tokens += static_cast<int64_t>(ex.tokens.size());
  for (size_t s = 0; s < steps.size(); s++) CHECK(steps[s].at("num_tokens") == tokens * static_cast<int64_t>(s + 1));
  // The same pairs every step: the loss falls as the margin grows.
  CHECK(steps[3].at("loss").get<double>() < steps[0].at("loss").get<double>());
  CHECK(steps[3].at("margin").get<double>() > steps[0].at("margin").get<double>());
  // The final model: transformers' sequence classifier, read back whole.
  const json config = json::parse(read_file(ws.path("out/config.json")));
  CHECK(config.at("architectures") == json::array({"LlamaForSequenceClassification"}));
  CHECK(config.at("pad_token_id") == tokenizer->eos());
  CHECK(!fs::exists(ws.path("out/generation_config.json")));  // a classifier does not generate
  const SafetensorsDir files(ws.path("out"));
  CHECK(files.find("score.weight"));
  CHECK(!files.find("lm_head.weight"));
  LlamaModel exported(model->config(), Device::cpu(), 1);
  CHECK(load_hf_weights(exported, ws.path("out")) == static_cast<int64_t>(exported.parameters().size()));
  // center_rewards_coefficient adds its term to the same first scores' loss; the metrics stay.
  const Run centred = run_train(ws.config(ws.keys_at(ws.path("centred")) + "center_rewards_coefficient: 0.25\n"));
  REQUIRE_MESSAGE(centred.exit_code == 0, centred.output);
  const std::vector<json> centred_steps = loss_records(ws.path("centred/metrics.jsonl"));
  REQUIRE(centred_steps.size() == 4);
  double centring = 0;
  for (size_t p = 0; p < 8; p++) centring += 0.25 * std::pow(scores[2 * p] + scores[2 * p + 1], 2) / 8;
  CHECK(centred_steps[0].at("loss").get<double>() == doctest::Approx(loss + centring).epsilon(1e-5));
  CHECK(centred_steps[0].at("margin").get<double>() == doctest::Approx(margin).epsilon(1e-4));
}

TEST_CASE("reward_model: resumes exactly, and evaluates its held-out pairs with TRL's eval_ names") {
  RewardWorkspace ws;
  const std::string eval = "val_set_size: 0.25\neval_steps: 2\nmicro_batch_size: 2\n";
  auto yaml = [&](const std::string& out) {
    std::string text = read_file(ws.config(ws.keys_at(out)));
    for (const char* key : {"val_set_size: 0\n", "micro_batch_size: 8\n"}) text.erase(text.find(key), std::string(key).size());
    return ws.write_config(text + eval);
  };
  const Run straight = run_train(yaml(ws.path("straight")));
  REQUIRE_MESSAGE(straight.exit_code == 0, straight.output);
  const std::string metrics = read_file(ws.path("straight/metrics.jsonl"));
  CHECK(metrics.find("\"eval_accuracy\"") != std::string::npos);
  CHECK(metrics.find("\"eval_margin\"") != std::string::npos);
  CHECK(metrics.find("\"eval_min_reward\"") != std::string::npos);
  // llm_train evaluate on the exported model: the held-out pairs as the run's last evaluation saw them.
  const Run evaluated = run_train("evaluate " + ws.path("c.yaml") + " --base_model " + ws.path("straight") +
                                  " --output_dir " + ws.path("evaluated"));
  REQUIRE_MESSAGE(evaluated.exit_code == 0, evaluated.output);
  const std::string last = metrics.substr(metrics.rfind("\"eval_loss\""));
  for (const std::string name : {"eval_loss", "eval_accuracy", "eval_margin", "eval_mean_reward", "eval_min_reward",
                                 "eval_max_reward"}) {
    CAPTURE(name);
    CHECK(number_after(evaluated.output, "\n" + name + ":") == doctest::Approx(number_after(last, "\"" + name + "\":")).epsilon(1e-5));
  }
  CHECK(evaluated.output.find("\ntrain_accuracy:") != std::string::npos);
  const Run half = run_train(yaml(ws.path("resumed")) + " --max_steps 2");
  REQUIRE_MESSAGE(half.exit_code == 0, half.output);
  const Run rest = run_train("--resume " + ws.path("resumed/step_000002") + " --max_steps 4");
  REQUIRE_MESSAGE(rest.exit_code == 0, rest.output);
  CHECK(train_records(ws.path("straight/metrics.jsonl")) == train_records(ws.path("resumed/metrics.jsonl")));
  check_same_model(ws.path("straight/step_000004"), ws.path("resumed/step_000004"));
  // The token count goes on from the checkpoint's; an evaluation reports the training count so far.
  std::vector<int64_t> counts[2];
  for (int run = 0; run < 2; run++)
    for (const json& r : loss_records(ws.path(run == 0 ? "straight/metrics.jsonl" : "resumed/metrics.jsonl")))
      counts[run].push_back(r.at("num_tokens").get<int64_t>());
  CHECK(counts[0].size() == 4);
  CHECK(counts[0] == counts[1]);
  CHECK(metrics.find("\"eval_num_tokens\": " + std::to_string(counts[0][1])) != std::string::npos);
}

// Each rank scores its own pairs; the step's mean over pairs is the same as one rank accumulating them.
TEST_CASE("reward_model on 2 ranks under ZeRO-3: the same losses as one rank accumulating the same pairs, the same extremes as one rank's wider micro-batches") {
  RewardWorkspace ws;
  auto yaml = [&](const std::string& out, const std::string& batch) {
    std::string text = read_file(ws.config(ws.keys_at(out)));
    for (const char* key : {"micro_batch_size: 8\n", "gradient_accumulation_steps: 1\n"})
      text.erase(text.find(key), std::string(key).size());
    return ws.write_config(text + batch);
  };
  const Run one = run_train(yaml(ws.path("one"), "micro_batch_size: 2\ngradient_accumulation_steps: 4\n"));
  REQUIRE_MESSAGE(one.exit_code == 0, one.output);
  const Run two = run_train(yaml(ws.path("two"), "micro_batch_size: 2\ngradient_accumulation_steps: 2\nzero_stage: 3\n"),
                            mpirun(2));
  REQUIRE_MESSAGE(two.exit_code == 0, two.output);
  check_losses_close(ws.path("one/metrics.jsonl"), ws.path("two/metrics.jsonl"), 1e-5);
  // TRL's min_reward and max_reward gather a micro-batch's scores over the ranks: the two ranks'
  // micro-batches of 2 pairs each are, taken together, one rank's micro-batches of 4.
  const Run wide = run_train(yaml(ws.path("wide"), "micro_batch_size: 4\ngradient_accumulation_steps: 2\n"));
  REQUIRE_MESSAGE(wide.exit_code == 0, wide.output);
  const std::vector<json> gathered = loss_records(ws.path("two/metrics.jsonl"));
  const std::vector<json> single = loss_records(ws.path("wide/metrics.jsonl"));
  REQUIRE(gathered.size() == single.size());
  for (size_t i = 0; i < single.size(); i++)
    for (const char* key : {"min_reward", "max_reward"})
      CHECK(gathered[i].at(key).get<double>() == doctest::Approx(single[i].at(key).get<double>()).epsilon(1e-5));
}

// Axolotl loads a reward model's adapter with PEFT's SEQ_CLS task, which trains the score head whole.
TEST_CASE("reward_model with LoRA: PEFT's SEQ_CLS adapter, the score head trained whole, merged as a classifier") {
  RewardWorkspace ws;
  const Run r = run_train(ws.config(ws.keys_at(ws.path("out")) +
                                    "adapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\nmerge_lora: true\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const std::vector<json> steps = loss_records(ws.path("out/metrics.jsonl"));
  REQUIRE(steps.size() == 4);
  CHECK(steps[3].at("loss").get<double>() < steps[0].at("loss").get<double>());
  const json adapter = json::parse(read_file(ws.path("out/adapter_config.json")));
  CHECK(adapter.at("task_type") == "SEQ_CLS");
  CHECK(adapter.at("modules_to_save") == json::array({"classifier", "score"}));
  const SafetensorsFile weights(ws.path("out/adapter_model.safetensors"));
  CHECK(weights.find("base_model.model.score.weight"));
  CHECK(weights.find("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
  CHECK(!weights.find("base_model.model.model.embed_tokens.weight"));
  // The merged model: the classifier with the trained head, the base's embedding untouched.
  const SafetensorsDir merged(ws.path("out/merged"));
  CHECK(json::parse(read_file(ws.path("out/merged/config.json"))).at("architectures") ==
        json::array({"LlamaForSequenceClassification"}));
  CHECK(merged.read("score.weight", DType::f32).to_floats() ==
        weights.read("base_model.model.score.weight", DType::f32).to_floats());
  CHECK(merged.read("model.embed_tokens.weight", DType::f32).to_floats() ==
        SafetensorsDir(ws.base).read("model.embed_tokens.weight", DType::f32).to_floats());
  // Without reward_model the classifier's heads are no module to save.
  const Run refused = run_train(ws.write_config(with_line_removed(read_file(ws.path("c.yaml")), "reward_model: true\n") +
                                                "lora_modules_to_save: [score]\n"));
  CHECK(refused.exit_code == 2);
  CHECK(error_text(refused).find("classifier and score are a classifier's heads") != std::string::npos);
}

TEST_CASE("reward_model: what it does not combine with is refused in one line") {
  RewardWorkspace ws;
  const std::string keys = ws.keys_at(ws.path("out"));
  const auto refused = [&](const std::string& config, const std::string& message) {
    const Run r = run_train(config);
    CAPTURE(r.output);
    CHECK(r.exit_code == 2);
    const std::string error = error_text(r);
    CHECK(error.find(message) != std::string::npos);
    CHECK(std::count(error.begin(), error.end(), '\n') <= 1);
  };
  const std::string without = read_file(ws.config(keys));
  auto edited = [&](const std::string& from, const std::string& to) {
    std::string text = without;
    text.replace(text.find(from), from.size(), to);
    return ws.write_config(text);
  };
  refused(edited("reward_model: true\n", ""), "reward_model: true with the dataset type bradley_terry.chat_template");
  refused(edited("type: bradley_terry.chat_template", "type: completion"),
          "the dataset type bradley_terry.chat_template with reward_model");
  refused(edited("num_labels: 1", "num_labels: 2"), "num_labels");
  refused(ws.config(keys + "neftune_noise_alpha: 5\n"), "no neftune_noise_alpha with reward_model");
  refused(ws.config(keys + "rl: dpo\n"), "no rl with reward_model");
  refused(ws.config(keys + "sample_packing: true\n"), "no sample_packing with reward_model");
}

// TRL's RewardTrainer written out in torch, from the same starting classifier.
TEST_CASE("reward_model trains as TRL's RewardTrainer: loss, grad_norm, accuracy, margin and rewards at every step") {
  check_reference_case("reward", "start",
                       "reward_model: true\nchat_template: jinja\nchat_template_jinja: " + reference_template() +
                           "\ndatasets:\n  - path: " + std::string(LLM_REWARD_REFERENCE_DIR) +
                           "/pairs.jsonl\n    type: bradley_terry.chat_template\n",
                       {"loss", "grad_norm", "accuracy", "margin", "min_reward", "mean_reward", "max_reward"});
}
