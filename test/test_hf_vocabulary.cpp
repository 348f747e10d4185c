// The vocabulary between a base model and the tokenizer, as transformers and Axolotl handle it:
// Axolotl's `tokens` growing embed_tokens and lm_head, a base table smaller than the tokenizer,
// config.json's pad_token_id as nn.Embedding's padding_idx, and fix_untrained_tokens.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <regex>

#include "io/safetensors.h"
#include "model/hf_checkpoint.h"
#include "test/test_files.h"
#include "test/test_util.h"
#include "test/train_fixture.h"

using namespace llm;
using namespace llm::testing;

namespace {

constexpr HfTokenIds kByteIds{256, 257};  // the byte tokenizer's bos and eos

}  // namespace

// Axolotl's tokens: the tokenizer grows and so do embed_tokens and lm_head (their base rows kept,
// new rows drawn as the init draws); a resume and the export carry the grown shapes.
TEST_CASE("tokens: embed_tokens and lm_head grow past base_model's vocabulary (to a multiple of 32)") {
  Workspace ws("hf_tokens");
  LlamaConfig shape = *llama_preset("tiny");
  shape.hidden_size = 32, shape.intermediate_size = 64, shape.num_hidden_layers = 2;
  shape.num_attention_heads = 4, shape.num_key_value_heads = 2, shape.tie_word_embeddings = false;
  LlamaModel base(shape, Device::cpu(), 123);
  const std::string dir = (ws.dir / "base").string();
  save_hf_model(base, dir, DType::f32, kByteIds);
  const std::string keys = "max_steps: 1\nwarmup_steps: 2\ntokens: ['<a>', '<b>', '<c>']\nresize_token_embeddings_to_32x: true\n"
                           "save_steps: 1\ntie_word_embeddings: false\n";
  Run r = run_train(ws.config(keys) + " --base_model " + dir);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(contains(r.output, "vocabulary: the tokenizer's 288 ids outgrow the model's 259"));
  CHECK(read_hf_config(ws.out("config.json")).vocab_size == 288);
  SafetensorsDir exported(ws.out());
  for (const char* name : {"model.embed_tokens.weight", "lm_head.weight"}) {
    CAPTURE(name);
    const std::vector<float> grown = exported.read(name, DType::f32).to_floats();
    const std::vector<float> own = SafetensorsDir(dir).read(name, DType::f32).to_floats();
    REQUIRE(grown.size() == 288 * 32);
    CHECK(std::vector<float>(grown.begin(), grown.begin() + own.size()) == own);  // lr 0: as loaded
    double sum_squares = 0;
    for (size_t i = own.size(); i < grown.size(); i++) sum_squares += grown[i] * grown[i];
    const double stddev = std::sqrt(sum_squares / static_cast<double>(grown.size() - own.size()));
    CHECK(stddev == doctest::Approx(shape.initializer_range).epsilon(0.1));  // 928 draws of N(0, 0.02)
  }
  // The checkpoint holds the grown model; the resume loads base_model's rows into it again.
  r = run_train("--resume " + ws.out("step_000001") + " --max_steps 2");
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(contains(r.output, "step 2/2"));
  // mean_resizing_embeddings: each new row is the mean of base_model's rows.
  Workspace mean_ws("hf_tokens_mean");
  r = run_train(mean_ws.config(keys + "mean_resizing_embeddings: true\n") + " --base_model " + dir);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const std::vector<float> own = SafetensorsDir(dir).read("lm_head.weight", DType::f32).to_floats();
  const std::vector<float> grown = SafetensorsDir(mean_ws.out()).read("lm_head.weight", DType::f32).to_floats();
  for (int64_t c = 0; c < 32; c++) {
    double mean = 0;
    for (int64_t row = 0; row < 259; row++) mean += own[row * 32 + c] / 259.0;
    CHECK(grown[287 * 32 + c] == doctest::Approx(mean).epsilon(1e-5));
  }
  // An adapter run must train the new rows: Axolotl's rule.
  r = run_train(ws.config("tokens: ['<a>']\nadapter: lora\nlora_target_linear: true\n") + " --base_model " + dir);
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "lora_modules_to_save: expected [embed_tokens, lm_head] with tokens and an adapter"));
}

// config.json's pad_token_id is nn.Embedding's padding_idx in transformers: read, written back,
// and that embedding row takes no gradient from the lookup (lm_head's, tied or not, it keeps).
// Without `tokens`: a base whose table is smaller than the tokenizer grows to it as Axolotl's
// _resize_token_embeddings grows it (the loader used to refuse the base's smaller table).
TEST_CASE("a base_model table smaller than the tokenizer grows to it, its rows kept") {
  Workspace ws("hf_small_vocab");
  LlamaConfig shape = *llama_preset("tiny");
  shape.hidden_size = 32, shape.intermediate_size = 64, shape.num_hidden_layers = 2;
  shape.num_attention_heads = 4, shape.num_key_value_heads = 2, shape.vocab_size = 250;
  const std::string dir = (ws.dir / "base").string();
  LlamaModel base(shape, Device::cpu(), 5);
  save_hf_model(base, dir, DType::f32, kByteIds);
  Run r = run_train(ws.config("max_steps: 1\nlearning_rate: 1e-12\n") + " --base_model " + dir);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(contains(r.output, "vocabulary: the tokenizer's 259 ids outgrow the model's 250: embed_tokens and lm_head get 9 new rows"));
  const std::vector<float> grown = SafetensorsDir(ws.out()).read("model.embed_tokens.weight", DType::f32).to_floats();
  const std::vector<float> own = SafetensorsDir(dir).read("model.embed_tokens.weight", DType::f32).to_floats();
  REQUIRE(grown.size() == 259 * 32);
  CHECK(std::vector<float>(grown.begin(), grown.begin() + own.size()) == own);
}

TEST_CASE("pad_token_id: the embedding row transformers' padding_idx freezes gets no gradient") {
  TempDir dir("hf_pad");
  LlamaConfig c = *llama_preset("tiny");
  c.hidden_size = 16, c.intermediate_size = 32, c.num_hidden_layers = 1, c.num_attention_heads = 2;
  c.num_key_value_heads = 1, c.tie_word_embeddings = false, c.pad_token_id = 5;
  LlamaModel model(c, Device::cpu(), 3);
  // Drawn as transformers' _init_weights draws nn.Embedding(padding_idx=5): that row zero.
  const std::vector<float> drawn = model.parameters().front().tensor->to_floats();
  CHECK(std::all_of(drawn.begin() + 5 * 16, drawn.begin() + 6 * 16, [](float x) { return x == 0.0f; }));
  CHECK(std::any_of(drawn.begin() + 4 * 16, drawn.begin() + 5 * 16, [](float x) { return x != 0.0f; }));
  save_hf_model(model, dir.path.string(), DType::f32, kByteIds);
  CHECK(read_hf_config(dir.file("config.json")).pad_token_id == 5);
  const Tensor ids = Tensor::from_ints({5, 7, 5, 9}, {1, 4}), positions = Tensor::from_ints({0, 1, 2, 3}, {1, 4});
  backward(model.loss(ids, Tensor::from_ints({7, 5, 9, 1}, {4}), positions));
  const std::vector<float> grad = model.parameters().front().tensor->grad().to_floats();  // embed_tokens
  REQUIRE(model.parameters().front().name == "model.embed_tokens.weight");
  float row5 = 0, row7 = 0;
  for (int64_t k = 0; k < 16; k++) row5 += std::fabs(grad[5 * 16 + k]), row7 += std::fabs(grad[7 * 16 + k]);
  CHECK(row5 == 0.0f);
  CHECK(row7 > 0.0f);
  write_file(dir.file("config.json"), std::regex_replace(read_file(dir.file("config.json")),
                                                          std::regex("\"pad_token_id\": 5"), "\"pad_token_id\": 999"));
  CHECK(error_of([&] { read_hf_config(dir.file("config.json")); }).find("pad_token_id: expected an id below vocab_size") !=
        std::string::npos);
}

// Axolotl's fix_untrained_tokens through llm_train (its arithmetic: test_untrained_tokens).
TEST_CASE("fix_untrained_tokens: a base model's zero rows the data uses are set, or refused when frozen") {
  Workspace ws("untrained_tokens");
  LlamaConfig config;
  config.hidden_size = 16, config.intermediate_size = 24, config.num_hidden_layers = 2;
  config.num_attention_heads = 4, config.num_key_value_heads = 2, config.vocab_size = 259;  // the byte tokenizer's
  config.max_position_embeddings = 64, config.rms_norm_eps = 1e-5f, config.initializer_range = 0.2f;
  config.rope = {500000.0f, 8.0f, 1.0f, 4.0f, 16};
  config.tie_word_embeddings = false;
  LlamaModel base(config, Device::cpu(), 3);
  // 'q' and 'z' (the corpus's "quick" and "lazy") never trained: rows of zeros in both matrices.
  for (const ParamRef& p : base.parameters())
    if (p.name == "model.embed_tokens.weight" || p.name == "lm_head.weight") {
      std::vector<float> rows = p.tensor->to_floats();
      for (const int64_t id : {'q', 'z'}) std::fill_n(rows.begin() + id * config.hidden_size, config.hidden_size, 0.0f);
      p.tensor->copy_from(Tensor::from_floats(rows, p.tensor->shape()));
    }
  const std::string dir = (ws.dir / "base").string();
  save_hf_model(base, dir, DType::f32, kByteIds);
  const std::string model = "base_model: " + dir + "\n";
  const Run run = run_train(ws.config("max_steps: 1\nfix_untrained_tokens: true\n", model));
  REQUIRE_MESSAGE(run.exit_code == 0, run.output);
  CHECK(run.output.find("fix_untrained_tokens: rows 113, 122 set to the trained rows' mean x their frequency") !=
        std::string::npos);
  // A LoRA run keeps embed_tokens and lm_head frozen: they would stay untrained, so it is refused.
  const Run lora = run_train(
      ws.config("max_steps: 1\nfix_untrained_tokens: true\nadapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\n", model));
  CHECK(lora.exit_code == 2);
  CHECK(lora.output.find("fix_untrained_tokens: the training data uses untrained tokens [113, 122]") != std::string::npos);
}
