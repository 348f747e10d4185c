// PEFT's own LoRA as the reference (model/lora.h, model/peft_adapter.h): our model with PEFT's
// saved adapters gives its logits, loss, gradients and merge (plain, one block, a target pattern,
// rank and alpha patterns, DoRA), and PEFT's other built inits draw its distributions.
#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "io/safetensors.h"
#include "model/hf_checkpoint.h"
#include "model/hf_config.h"
#include "model/peft_adapter.h"
#include "test/lora_fixture.h"
#include "test/reference_inputs.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

// PEFT's other built inits (peft_init_lora_weights): false leaves nn.Linear's init on B too, so
// the untrained adapter moves the model; gaussian draws A from N(0, 1/r) and keeps B zero.
TEST_CASE("init_lora_weights false and gaussian: PEFT's distributions, and what adapter_config.json says") {
  TokenBatch b = random_batch(2, 7, 19);
  for (const char* init : {"false", "gaussian"}) {
    CAPTURE(init);
    LlamaModel model(small_config(), Device::cpu(), 3);
    const Tensor before = model.logits(b.ids, b.positions);
    LoraConfig lora = lora_config();
    lora.r = 16;  // enough draws per matrix for the spread to show
    lora.init = init;
    model.add_lora(lora, 3);
    CHECK(bit_identical(model.logits(b.ids, b.positions), before) == (lora.init == "gaussian"));
    for (const ParamRef& p : model.adapter_parameters()) {
      CAPTURE(p.name);
      const std::vector<float> v = p.tensor->to_floats();
      double sum_squares = 0.0;
      for (float x : v) sum_squares += double(x) * x;
      const double rms = std::sqrt(sum_squares / v.size());
      const float fan_in = float(p.tensor->size(1));
      if (contains(p.name, "lora_B") && lora.init == "gaussian") {
        CHECK(max_abs(*p.tensor) == 0.0f);
      } else if (contains(p.name, "lora_A") && lora.init == "gaussian") {
        CHECK(rms == doctest::Approx(1.0 / 16).epsilon(0.2));  // std 1/r
      } else {  // Kaiming-uniform on (rows, fan_in): uniform in +-1/sqrt(fan_in), rms bound/sqrt(3)
        CHECK(max_abs(*p.tensor) <= 1.0f / std::sqrt(fan_in));
        CHECK(rms == doctest::Approx(1.0 / std::sqrt(3.0 * fan_in)).epsilon(0.2));
      }
    }
    TempDir dir("lora_init");
    save_peft_adapter(model, dir.path.string(), "base", DType::f32);
    const nlohmann::json config = nlohmann::json::parse(read_file(dir.file(kPeftConfigFile)));
    CHECK(config["init_lora_weights"] == (lora.init == "gaussian" ? nlohmann::json("gaussian") : nlohmann::json(false)));
  }
}

// PEFT 0.21's own LoRA on transformers' Llama (tools/make_peft_reference.py wrote the adapter
// with save_pretrained, the merged model with merge_and_unload, and the logits, loss and
// gradients): our model with that adapter loaded must give the same numbers, and our merge the
// same weights. This pins PEFT's tensor names, shapes, adapter_config.json and scale.
namespace {
// The script's LoraConfig: r 4, alpha 8, every linear, lm_head trained whole.
LoraConfig peft_reference_lora() {
  LoraConfig lora;
  lora.r = 4, lora.alpha = 8.0f, lora.target_linear = true, lora.modules_to_save = {"lm_head"};
  return lora;
}

void check_against_peft(const std::string& dir, const LoraConfig& lora, int64_t expected_adapted) {
  const bool dora = lora.use_dora;
  const std::string base = LLM_HF_REFERENCE_DIR "/untied_gqa2";
  LlamaModel model(read_hf_config(base + "/config.json"), Device::cpu(), 0);
  load_hf_weights(model, base);
  model.add_lora(lora, 0);
  int64_t adapted = 0;
  for (int64_t i = 0; i < model.config().num_hidden_layers; i++)
    for (int k = 0; k < kNumLinear; k++) adapted += lora.adapts(i, k);
  const SafetensorsFile want(dir + "/reference.safetensors");
  auto check_close = [](const Tensor& got, const Tensor& expected, float tol) {
    const float scale = std::max(1.0f, max_abs(expected));
    INFO("max |ours - PEFT| " << max_abs_diff(got, expected) << ", max |PEFT| " << scale);
    CHECK(max_abs_diff(got, expected) <= tol * scale);
  };
  if (dora) {  // the magnitudes PEFT starts with: each base weight row's norm
    model.init_dora_magnitudes();
    for (const ParamRef& p : model.adapter_parameters())
      if (p.name.find("lora_magnitude_vector") != std::string::npos) {
        CAPTURE(p.name);
        check_close(*p.tensor, want.read("init." + p.name, DType::f32), 1e-6f);
      }
  }
  load_peft_adapter(model, dir + "/adapter");
  const TokenBatch in = reference_inputs(base + "/reference.json");
  const Tensor expected_logits = want.read("logits", DType::f32);
  check_close(model.logits(in.ids, in.positions).reshape(expected_logits.shape()), expected_logits, 2e-5f);
  Tensor loss = model.loss(in.ids, in.targets, in.positions);
  const nlohmann::json ref = nlohmann::json::parse(read_file(dir + "/reference.json"));
  CHECK(loss.item() == doctest::Approx(ref["loss"].get<double>()).epsilon(1e-6));
  backward(loss);
  const std::vector<ParamRef> trained = model.trainable_parameters();
  CHECK(trained.size() == size_t(1 + (dora ? 3 : 2) * adapted));
  CHECK(adapted == expected_adapted);
  for (const ParamRef& p : trained) {
    CAPTURE(p.name);
    check_close(p.tensor->grad(), want.read("grad." + p.name, DType::f32), 2e-5f);
  }
  TempDir merged("lora_peft_merged");
  save_merged_model(model, merged.path.string(), DType::f32, {1, 2});
  const SafetensorsDir ours(merged.path.string()), theirs(dir + "/merged");
  CHECK(ours.names() == theirs.names());
  for (const std::string& name : theirs.names()) {
    CAPTURE(name);
    check_close(ours.read(name, DType::f32), theirs.read(name, DType::f32), 1e-6f);
  }
}
}  // namespace

TEST_CASE("matches PEFT's LoRA: logits, loss, adapter and lm_head gradients, merged weights") {
  check_against_peft(LLM_PEFT_REFERENCE_DIR, peft_reference_lora(), 14);
}

// PEFT's layers_to_transform: block 1 alone has adapters, block 0 stays the base's.
TEST_CASE("matches PEFT's LoRA on one block (layers_to_transform): logits, loss, gradients, merged weights") {
  LoraConfig lora = peft_reference_lora();
  lora.layers = {1};
  check_against_peft(LLM_PEFT_REFERENCE_DIR "/layers", lora, 7);
}

// PEFT's target_modules as one regular expression: q and v of block 0, up and down of block 1.
TEST_CASE("matches PEFT's LoRA on the linears a target_modules pattern matches: logits, loss, gradients, merge") {
  LoraConfig lora = peft_reference_lora();
  lora.target_pattern = R"(model\.layers\.(0\.self_attn\.(q|v)|1\.mlp\.(up|down))_proj)";
  check_against_peft(LLM_PEFT_REFERENCE_DIR "/pattern", lora, 4);
}

// PEFT's rank_pattern and alpha_pattern (Axolotl's lora_rank_pattern, lora_alpha_pattern): each
// module's own r and alpha, the first matching key winning (block 1's q_proj takes r 2, block 0's
// 8; block 0's down_proj alpha 3, not 16). The script's patterns, in its order.
TEST_CASE("matches PEFT's LoRA with rank_pattern and alpha_pattern: shapes, scales, logits, gradients, merge") {
  LoraConfig lora = peft_reference_lora();
  lora.rank_pattern = {{"model.layers.1.self_attn.q_proj", 2}, {"q_proj", 8}, {"down_proj", 6}};
  lora.alpha_pattern = {{"(up|down)_proj", 3.0f}, {R"(layers\.0\..*)", 16.0f}};
  CHECK(lora.rank(1, 0) == 2);
  CHECK(lora.rank(0, 0) == 8);
  CHECK(lora.rank(0, 6) == 6);
  CHECK(lora.rank(0, 1) == 4);
  CHECK(lora.scale(0, 6) == 0.5f);   // alpha 3 / r 6: (up|down)_proj comes first
  CHECK(lora.scale(0, 1) == 4.0f);   // alpha 16 / r 4
  CHECK(lora.scale(1, 0) == 4.0f);   // alpha 8 / r 2
  CHECK(lora.scale(1, 2) == 2.0f);   // neither: alpha 8 / r 4
  lora.use_rslora = true;
  CHECK(lora.scale(0, 6) == doctest::Approx(3.0 / std::sqrt(6.0)));
  lora.use_rslora = false;
  check_against_peft(LLM_PEFT_REFERENCE_DIR "/rank_patterns", lora, 14);
  // Written as PEFT writes them, and a config without them cannot load that adapter.
  const std::string base = LLM_HF_REFERENCE_DIR "/untied_gqa2";
  LlamaModel model(read_hf_config(base + "/config.json"), Device::cpu(), 0);
  model.add_lora(lora, 0);
  TempDir saved("lora_rank_patterns");
  save_peft_adapter(model, saved.path.string(), "base", DType::f32);
  const auto config = [](const std::string& dir) {
    return nlohmann::json::parse(read_file(dir + "/adapter_config.json"));
  };
  const nlohmann::json ours = config(saved.path.string()), peft = config(LLM_PEFT_REFERENCE_DIR "/rank_patterns/adapter");
  CHECK(ours["rank_pattern"] == peft["rank_pattern"]);
  CHECK(ours["alpha_pattern"] == peft["alpha_pattern"]);
  LlamaModel plain(read_hf_config(base + "/config.json"), Device::cpu(), 0);
  plain.add_lora(peft_reference_lora(), 0);
  CHECK_THROWS_WITH(load_peft_adapter(plain, saved.path.string()),
                    doctest::Contains("adapter_config.json: rank_pattern: expected {} (lora_rank_pattern) as the config asks, got {"));
  lora.rank_pattern.emplace_back("no_such_proj", 3);
  CHECK(lora.unmatched_patterns(2) == std::vector<std::string>{"no_such_proj"});
}

// DoRA: the magnitudes' start, their gradients (the weight norm detached, as PEFT), A's and B's
// through the per-feature factor, and the merge's rows scaled by magnitude / norm.
TEST_CASE("matches PEFT's DoRA: initial magnitudes, logits, loss, every gradient, merged weights") {
  LoraConfig lora = peft_reference_lora();
  lora.use_dora = true;
  check_against_peft(LLM_PEFT_REFERENCE_DIR "/dora", lora, 14);
}
