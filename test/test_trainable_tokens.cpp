// PEFT's trainable token rows beside LoRA (LoraConfig::embed_token_rows, head_token_rows; Axolotl's
// peft_trainable_token_indices): an untrained model is the base model, the rows' gradient is the
// gradient the whole table's rows would get (a tied lm_head's use summed in), PEFT's files both
// ways, the merged export, and llm_train with them (exact resume, the vocabulary's bound). The
// Trainer's trajectory with PEFT's own layer: test_hf_trajectory.
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "io/safetensors.h"
#include "model/hf_checkpoint.h"
#include "model/peft_adapter.h"
#include "test/lora_fixture.h"
#include "test/train_fixture.h"

using namespace llm;
using namespace llm::testing;

namespace {

const std::string kEmbedRows = "model.embed_tokens.token_adapter.trainable_tokens_delta";
const std::string kHeadRows = "lm_head.token_adapter.trainable_tokens_delta";

LlamaConfig model_config(bool tied) {
  LlamaConfig c = small_config();
  c.tie_word_embeddings = tied;
  return c;
}

const Tensor& named(LlamaModel& model, const std::string& name) {
  for (const ParamRef& p : model.trainable_parameters())
    if (p.name == name) return *p.tensor;
  FAIL("no trainable tensor " << name);
  static const Tensor none;
  return none;
}

// The table's gradient at `ids`, as one (n, C) list.
std::vector<float> rows_of(const Tensor& grad, const std::vector<int64_t>& ids) {
  const std::vector<float> all = grad.to_floats();
  const int64_t C = grad.size(1);
  std::vector<float> out;
  for (int64_t id : ids) out.insert(out.end(), all.begin() + id * C, all.begin() + (id + 1) * C);
  return out;
}

float largest_difference(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float m = 0.0f;
  for (size_t i = 0; i < a.size(); i++) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace

TEST_CASE("token rows: step 0 is the base model; their gradient is the whole table's at those rows") {
  for (bool tied : {false, true}) {
    CAPTURE(tied);
    LlamaModel rows(model_config(tied), Device::cpu(), 4), whole(model_config(tied), Device::cpu(), 4);
    const TokenBatch b = random_batch(2, 7, 19);
    Tensor before;
    {
      NoGradGuard no_grad;
      before = rows.logits(b.ids, b.positions);
    }
    LoraConfig lora = lora_config(), lora_whole = lora_config();
    lora.embed_token_rows = {3, 0, 11};
    if (!tied) lora.head_token_rows = {5, 2};
    lora_whole.modules_to_save = tied ? std::vector<std::string>{"embed_tokens"}
                                      : std::vector<std::string>{"embed_tokens", "lm_head"};
    rows.add_lora(lora, 4);
    whole.add_lora(lora_whole, 4);
    {
      NoGradGuard no_grad;
      CHECK(bit_identical(rows.logits(b.ids, b.positions), before));
    }
    CHECK(named(rows, kEmbedRows).shape() == Shape{3, 16});
    for (const ParamRef& p : rows.parameters()) CHECK_MESSAGE(!p.tensor->requires_grad(), p.name);
    CHECK(rows.adapter_parameters().size() == 28 + (tied ? 1 : 2));  // a tied lm_head reads the embedding's
    backward(rows.loss(b.ids, b.targets, b.positions));
    backward(whole.loss(b.ids, b.targets, b.positions));
    Tensor embed_grad, head_grad;
    for (const ParamRef& p : whole.trainable_parameters()) {
      if (p.name == "model.embed_tokens.weight") embed_grad = p.tensor->grad();
      if (p.name == "lm_head.weight") head_grad = p.tensor->grad();
    }
    // Tied, the table's gradient sums the lookup's and lm_head's: so does the rows' one tensor.
    CHECK(largest_difference(named(rows, kEmbedRows).grad().to_floats(), rows_of(embed_grad, lora.embed_token_rows)) < 1e-6f);
    if (!tied)
      CHECK(largest_difference(named(rows, kHeadRows).grad().to_floats(), rows_of(head_grad, lora.head_token_rows)) < 1e-6f);
  }
}

// PEFT takes the rows' first values from the model as Axolotl loads it (bf16 with bf16), widened to
// f32: start_token_rows again once the frozen table is stored in the compute dtype.
TEST_CASE("token rows start as the table holds them: bf16-rounded once the frozen table is bf16") {
  LlamaModel model(model_config(true), Device::cpu(), 5);
  LoraConfig lora = lora_config();
  lora.embed_token_rows = {2, 17};
  model.add_lora(lora, 5);
  std::vector<float> table;
  for (const ParamRef& p : model.parameters())
    if (p.name == "model.embed_tokens.weight") table = p.tensor->to_floats();
  CHECK(named(model, kEmbedRows).to_floats() == rows_of(Tensor::from_floats(table, {19, 16}), {2, 17}));
  model.store_frozen_as(DType::bf16);
  model.start_token_rows();
  const Tensor rounded = Tensor::from_floats(table, {19, 16}).to(DType::bf16).to(DType::f32);
  CHECK(named(model, kEmbedRows).to_floats() == rows_of(rounded, {2, 17}));
  CHECK(named(model, kEmbedRows).dtype() == DType::f32);
  CHECK(named(model, kEmbedRows).requires_grad());
}

TEST_CASE("token rows in PEFT's files: the delta tensors, trainable_token_indices, loaded back; the merge") {
  TempDir dir("token_rows_peft");
  LlamaModel model(model_config(false), Device::cpu(), 6);
  LoraConfig lora = lora_config();
  lora.embed_token_rows = {4, 1};
  lora.head_token_rows = {7};
  model.add_lora(lora, 6);
  randomise_b(model);
  for (const std::string& name : {kEmbedRows, kHeadRows}) {
    Tensor values = named(model, name);
    values.copy_from(randn(values.shape(), 0.5f));
  }
  save_peft_adapter(model, dir.path.string(), "/models/base", DType::f32);
  const nlohmann::json config = nlohmann::json::parse(read_file(dir.file(kPeftConfigFile)));
  CHECK(config["trainable_token_indices"] == nlohmann::json({{"embed_tokens", {4, 1}}, {"lm_head", {7}}}));
  const SafetensorsFile file(dir.file(kPeftWeightsFile));
  REQUIRE(file.find("base_model.model." + kEmbedRows));
  CHECK(file.find("base_model.model." + kEmbedRows)->shape == Shape{2, 16});
  CHECK(file.find("base_model.model." + kHeadRows)->shape == Shape{1, 16});

  LlamaModel loaded(model_config(false), Device::cpu(), 6);
  loaded.add_lora(lora, 99);
  load_peft_adapter(loaded, dir.path.string());
  const TokenBatch b = random_batch(2, 6, 19);
  NoGradGuard no_grad;
  CHECK(bit_identical(loaded.logits(b.ids, b.positions), model.logits(b.ids, b.positions)));
  LlamaModel other(model_config(false), Device::cpu(), 6);
  LoraConfig fewer = lora;
  fewer.head_token_rows.clear();
  other.add_lora(fewer, 6);
  CHECK_THROWS_WITH(load_peft_adapter(other, dir.path.string()),
                    doctest::Contains("trainable_token_indices: expected {\"embed_tokens\":[4,1]} "
                                      "(peft_trainable_token_indices) as the config asks, got"));

  // merge_and_unload's tables: the trained rows in place, every other row the base's.
  save_merged_model(model, dir.file("merged"), DType::f32, {1, 2});
  const SafetensorsDir merged(dir.file("merged"));
  const std::vector<float> embed = merged.read("model.embed_tokens.weight", DType::f32).to_floats();
  const std::vector<float> head = merged.read("lm_head.weight", DType::f32).to_floats();
  std::vector<float> base_embed, base_head;
  for (const ParamRef& p : model.parameters()) {
    if (p.name == "model.embed_tokens.weight") base_embed = p.tensor->to_floats();
    if (p.name == "lm_head.weight") base_head = p.tensor->to_floats();
  }
  const std::vector<float> embed_rows = named(model, kEmbedRows).to_floats(), head_rows = named(model, kHeadRows).to_floats();
  for (int64_t v = 0; v < 19; v++)
    for (int64_t c = 0; c < 16; c++) {
      const int64_t slot = v == 4 ? 0 : v == 1 ? 1 : -1;
      CHECK(embed[v * 16 + c] == (slot < 0 ? base_embed[v * 16 + c] : embed_rows[slot * 16 + c]));
      CHECK(head[v * 16 + c] == (v == 7 ? head_rows[c] : base_head[v * 16 + c]));
    }
  LlamaModel reloaded(model_config(false), Device::cpu(), 9);
  load_hf_weights(reloaded, dir.file("merged"));
  CHECK(max_abs_diff(reloaded.logits(b.ids, b.positions), model.logits(b.ids, b.positions)) < 1e-5f);
}

TEST_CASE("llm_train with peft_trainable_token_indices: the rows learn, a resume is exact, ids past the vocabulary stop") {
  Workspace straight("token_rows_straight"), resumed("token_rows_resumed");
  const std::string lora = "adapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\nmerge_lora: true\n"
                           "learning_rate: 0.01\npeft_trainable_token_indices: [5, 9]\n";
  Run a = run_train(straight.config(lora + "max_steps: 6\nsave_steps: 3\n"));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  Run b1 = run_train(resumed.config(lora + "max_steps: 3\nsave_steps: 3\n"));
  REQUIRE_MESSAGE(b1.exit_code == 0, b1.output);
  Run b2 = run_train("--resume " + resumed.out("step_000003") + " --max_steps 6");
  REQUIRE_MESSAGE(b2.exit_code == 0, b2.output);
  CHECK(train_records(straight.out("metrics.jsonl")) == train_records(resumed.out("metrics.jsonl")));
  check_same_model(straight.out("step_000006"), resumed.out("step_000006"));
  const SafetensorsFile adapter(straight.out(kPeftWeightsFile));
  REQUIRE(adapter.find("base_model.model." + kEmbedRows));
  const nlohmann::json config = nlohmann::json::parse(read_file(straight.out(kPeftConfigFile)));
  CHECK(config["trainable_token_indices"] == nlohmann::json({5, 9}));
  // The merged embedding's rows 5 and 9 are the trained ones, no longer the base's.
  const std::vector<float> rows = adapter.read("base_model.model." + kEmbedRows, DType::f32).to_floats();
  const std::vector<float> merged = SafetensorsDir(straight.out("merged")).read("model.embed_tokens.weight", DType::f32).to_floats();
  const int64_t C = static_cast<int64_t>(rows.size()) / 2;
  CHECK(std::vector<float>(merged.begin() + 9 * C, merged.begin() + 10 * C) == std::vector<float>(rows.begin() + C, rows.end()));

  Workspace bad("token_rows_bad");
  Run c = run_train(bad.config(lora + "max_steps: 1\npeft_trainable_token_indices: [5, 100000]\n"));
  CHECK(c.exit_code == 2);
  CHECK(contains(error_text(c), "peft_trainable_token_indices: expected token ids below the vocabulary's "));
}
