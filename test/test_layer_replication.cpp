// PEFT's layer replication beside LoRA (LoraConfig::layer_replication; Axolotl's
// peft_layer_replication): the replicated model computes as the base's blocks stacked as the
// ranges say, a copy shares its original's frozen weights (quantised, cast and moved too) while
// its adapters are its own, PEFT's files both ways, and llm_train with it (exact resume, what it
// refuses). The Trainer's trajectory over PEFT's own replication: test_hf_trajectory.
#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "io/safetensors.h"
#include "model/peft_adapter.h"
#include "test/lora_fixture.h"
#include "test/train_fixture.h"

using namespace llm;
using namespace llm::testing;

namespace {

LlamaConfig three_blocks() {
  LlamaConfig c = small_config();
  c.num_hidden_layers = 3;
  return c;
}

const std::vector<std::pair<int64_t, int64_t>> kRanges = {{0, 2}, {1, 3}};  // blocks 0, 1, 1, 2
const int64_t kSource[] = {0, 1, 1, 2};

}  // namespace

TEST_CASE("replicate_layers: the ranges' blocks stacked, a copy sharing its original's weights") {
  LlamaModel base(three_blocks(), Device::cpu(), 4), replicated(three_blocks(), Device::cpu(), 4);
  replicated.replicate_layers(kRanges);
  REQUIRE(replicated.config().num_hidden_layers == 4);
  CHECK(replicated.layer(2).q_proj.shares_storage(replicated.layer(1).q_proj));
  CHECK(replicated.layer(2).input_layernorm.shares_storage(replicated.layer(1).input_layernorm));
  CHECK_FALSE(replicated.layer(3).q_proj.shares_storage(replicated.layer(1).q_proj));
  // The same blocks written out as a 4-block model: the same logits, bit for bit.
  LlamaConfig four = three_blocks();
  four.num_hidden_layers = 4;
  LlamaModel stacked(four, Device::cpu(), 9);
  for (const ParamRef& p : stacked.parameters()) {
    std::string name = p.name;
    for (int64_t i = 0; i < 4; i++) {
      const std::string block = "model.layers." + std::to_string(i) + ".";
      if (name.rfind(block, 0) == 0) name = "model.layers." + std::to_string(kSource[i]) + "." + name.substr(block.size());
    }
    for (const ParamRef& q : base.parameters())
      if (q.name == name) p.tensor->copy_from(*q.tensor);
  }
  TokenBatch b = random_batch(2, 7, 19);
  CHECK(bit_identical(replicated.logits(b.ids, b.positions), stacked.logits(b.ids, b.positions)));

  // Adapters of its own on every block: their gradients differ between a block and its copy.
  replicated.add_lora(lora_config(), 4);
  CHECK(replicated.adapter_parameters().size() == 4 * 7 * 2);
  randomise_b(replicated);
  backward(replicated.loss(b.ids, b.targets, b.positions));
  const Tensor& a1 = replicated.layer(1).lora[0].a;
  const Tensor& a2 = replicated.layer(2).lora[0].a;
  CHECK_FALSE(a1.shares_storage(a2));
  CHECK(max_abs_diff(a1.grad(), a2.grad()) > 0.0f);
  CHECK_FALSE(replicated.layer(1).q_proj.grad().defined());  // the shared base stays frozen
  CHECK_THROWS(replicated.replicate_layers(kRanges));        // once, before add_lora
}

TEST_CASE("quantised, cast and moved, a copy keeps sharing its original's frozen weights") {
  LlamaModel plain(three_blocks(), Device::cpu(), 5), model(three_blocks(), Device::cpu(), 5);
  model.replicate_layers(kRanges);
  plain.add_lora(lora_config(), 5);
  model.add_lora(lora_config(), 5);
  // Each shared weight quantised once: the bytes of the 3 base blocks, not of 4.
  CHECK(model.quantize_frozen_linears(QuantFormat::nf4, true) == plain.quantize_frozen_linears(QuantFormat::nf4, true));
  model.store_frozen_as(DType::bf16);
  model.move_to(Device::cpu());
  CHECK(model.layer(2).quant[6].codes.shares_storage(model.layer(1).quant[6].codes));
  CHECK_FALSE(model.layer(2).quant[6].codes.shares_storage(model.layer(0).quant[6].codes));
  CHECK(model.layer(2).post_attention_layernorm.dtype() == DType::bf16);
  CHECK(model.layer(2).post_attention_layernorm.shares_storage(model.layer(1).post_attention_layernorm));
  CHECK_FALSE(model.layer(2).lora[6].b.shares_storage(model.layer(1).lora[6].b));
}

TEST_CASE("PEFT files: layer_replication written, and a file that disagrees refused") {
  TempDir dir("replication_peft");
  LoraConfig lora = lora_config();
  lora.layer_replication = kRanges;
  LlamaModel model(three_blocks(), Device::cpu(), 6);
  model.replicate_layers(kRanges);
  model.add_lora(lora, 6);
  randomise_b(model);
  save_peft_adapter(model, dir.path.string(), "/models/base", DType::f32);
  const nlohmann::json config = nlohmann::json::parse(read_file(dir.file(kPeftConfigFile)));
  CHECK(config["layer_replication"] == nlohmann::json::parse("[[0, 2], [1, 3]]"));
  const SafetensorsFile file(dir.file(kPeftWeightsFile));
  CHECK(file.entries().size() == 4 * 7 * 2);
  CHECK(file.find("base_model.model.model.layers.3.mlp.down_proj.lora_B.weight"));

  LlamaModel other(three_blocks(), Device::cpu(), 7);
  other.replicate_layers(kRanges);
  other.add_lora(lora, 7);
  load_peft_adapter(other, dir.path.string());
  std::vector<ParamRef> x = model.trainable_parameters(), y = other.trainable_parameters();
  REQUIRE(x.size() == y.size());
  for (size_t i = 0; i < x.size(); i++) CHECK_MESSAGE(bit_identical(*x[i].tensor, *y[i].tensor), x[i].name);

  LlamaModel unreplicated(three_blocks(), Device::cpu(), 7);
  unreplicated.add_lora(lora_config(), 7);
  CHECK(error_of([&] { load_peft_adapter(unreplicated, dir.path.string()); }) ==
        dir.file(kPeftConfigFile) + ": layer_replication: expected null (peft_layer_replication) as the config asks, "
                                    "got [[0,2],[1,3]]");
}

TEST_CASE("llm_train with peft_layer_replication: trains, resumes exactly; what it refuses") {
  Workspace straight("replication_straight"), resumed("replication_resumed");
  const std::string adapter = "adapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\nlearning_rate: 0.01\n";
  const std::string lora = adapter + "peft_layer_replication: [[0, 2], [1, 2]]\n";
  const std::string output = check_resume_exact(straight, resumed, lora + "max_steps: 6\nsave_steps: 3\n", nullptr, "");
  CHECK(contains(output, "peft_layer_replication: 3 blocks from the base's 2, copies sharing their frozen weights"));
  const nlohmann::json config = nlohmann::json::parse(read_file(straight.out("adapter_config.json")));
  CHECK(config["layer_replication"] == nlohmann::json::parse("[[0, 2], [1, 2]]"));
  CHECK(SafetensorsFile(straight.out("adapter_model.safetensors")).find("base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight"));

  Workspace bad("replication_bad");
  // An empty list is no replication, as PEFT and Axolotl read it.
  Run none = run_train(bad.config(adapter + "peft_layer_replication: []\nmax_steps: 1\n"));
  REQUIRE_MESSAGE(none.exit_code == 0, none.output);
  CHECK_FALSE(contains(none.output, "peft_layer_replication:"));
  const std::pair<std::string, std::string> refused[] = {
      {"peft_layer_replication: [[0, 2]]\n", "adapter: lora or qlora with it"},
      {adapter + "peft_layer_replication: [[0, 3]]\n", "ranges within the base's num_hidden_layers, 2, got [0, 3]"},
      {adapter + "peft_layer_replication: [[1, 1]]\n", "a list of [start, end] block ranges, 0 <= start < end, got [1, 1]"},
      {lora + "merge_lora: true\n", "no merge_lora with it"},
      {lora + "peft_layers_to_transform: [3]\n", "block indices below the replicated blocks' count, 3, got 3"},
  };
  for (const auto& [extra, expected] : refused) {
    CAPTURE(extra);
    Run r = run_train(bad.config(extra + "max_steps: 1\n"));
    CHECK(r.exit_code == 2);
    CHECK_MESSAGE(contains(error_text(r), expected), error_text(r));
  }
}
