// Which tensors train and how: train/optimizer_groups (each trained tensor's weight decay and
// learning-rate multiple under Axolotl's embedding_lr_scale / embedding_lr / lr_groups, LoRA+ and
// the Trainer's default) and train/unfrozen_parameters (Axolotl's patterns of the weights that
// train), with the config's checks of those keys. test_hf_trajectory holds the resulting steps to
// the Trainer's.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "test/config_fixture.h"
#include "model/llama.h"
#include "train/config_spectrum.h"
#include "train/optimizer_groups.h"
#include "train/unfrozen_parameters.h"

using namespace llm;
using namespace llm::config_test;

TEST_CASE("embedding_lr_scale, embedding_lr, lr_groups: Axolotl's optimizer groups, each entry checked") {
  const TrainConfig c = parse("learning_rate: 1e-3\nweight_decay: 0.1\nembedding_lr_scale: 0.5\n"
                              "lr_groups: [{name: a, modules: [self_attn, up_proj], lr: 2e-3}, {name: b, modules: [up_proj], lr: 4e-3}]\n");
  REQUIRE(c.lr_groups.size() == 2);
  CHECK(c.grouped_optimizer());
  auto group = [&c](const std::string& name, int64_t ndim = 2) { return optimizer_group(c, name, ndim); };
  CHECK(!group("model.embed_tokens.weight").decay);
  CHECK(group("lm_head.weight").lr_scale == 0.5f);
  CHECK(group("model.layers.0.self_attn.q_proj.weight").lr_scale == 2.0f);
  CHECK(group("model.layers.0.self_attn.q_proj.weight").decay);
  // up_proj is listed by both groups: the later one's, as Axolotl's dict keeps it.
  CHECK(group("model.layers.1.mlp.up_proj.weight").lr_scale == 4.0f);
  CHECK(group("model.layers.1.mlp.down_proj.weight").lr_scale == 1.0f);
  CHECK(!group("model.layers.0.input_layernorm.weight", 1).decay);
  CHECK(group("model.layers.0.input_layernorm.weight", 1).lr_scale == 1.0f);
  CHECK(parse("learning_rate: 1e-3\nembedding_lr: 1e-4\n").embedding_lr == 1e-4);
  CHECK(optimizer_group(parse("learning_rate: 1e-3\nembedding_lr: 1e-4\n"), "model.embed_tokens.weight", 2).lr_scale ==
        doctest::Approx(0.1));
  // Without the keys: the Trainer's one group, embeddings decayed.
  CHECK(optimizer_group(parse(""), "model.embed_tokens.weight", 2).decay);
  CHECK(error_with("lr_groups: {name: a}\n") == "cfg.yaml:3: lr_groups: expected a list of {name, modules: [name parts], lr}, got a map");
  CHECK(error_with("lr_groups: [{name: a, modules: [self_attn]}]\n") ==
        "cfg.yaml:3: lr_groups[0].lr: expected a learning rate > 0, got none");
  CHECK(error_with("lr_groups: [{name: a, modules: [], lr: 1e-3}]\n") ==
        "cfg.yaml:3: lr_groups[0].modules: expected a non-empty list of name parts, got none");
  CHECK(error_with("lr_groups: [{name: a, modules: [x], lr: 0}]\n").find("cfg.yaml:3: lr_groups[0].lr: expected a number > 0") == 0);
  CHECK(error_with("embedding_lr_scale: -1\n").find("cfg.yaml:3: embedding_lr_scale: expected a number > 0") == 0);
  // transformers reads optim_args for other optimizers only (its AdamW and bitsandbytes' take the
  // adam_* keys): listed as unused, not refused.
  CHECK(parse("optim_args: 'betas=(0.9,0.95)'\n").unknown_keys == std::vector<std::string>{"optim_args"});
  // With LoRA+ they go unused, as Axolotl hands the optimizer to PEFT's LoRA+.
  CHECK(parse("adapter: lora\nlora_target_linear: true\nloraplus_lr_ratio: 16\nembedding_lr_scale: 0.5\n").unknown_keys ==
        std::vector<std::string>{"embedding_lr_scale"});
}

TEST_CASE("LoRA+: lora_B and 1-D tensors at the ratio, no weight decay anywhere") {
  const TrainConfig c = parse("adapter: lora\nlora_target_linear: true\nloraplus_lr_ratio: 16\nweight_decay: 0.1\n");
  const OptimizerGroup b = optimizer_group(c, "model.layers.0.self_attn.q_proj.lora_B.weight", 2);
  CHECK(b.lr_scale == 16.0f);
  CHECK(!b.decay);
  CHECK(optimizer_group(c, "model.layers.0.self_attn.q_proj.lora_A.weight", 2).lr_scale == 1.0f);
  CHECK(optimizer_group(c, "model.layers.0.self_attn.q_proj.lora_magnitude_vector", 1).lr_scale == 16.0f);
}

TEST_CASE("unfrozen_parameters: Axolotl's patterns, matched from the name's start, dots literal unless '.+'") {
  auto matches = [](const std::string& pattern, const std::string& name) {
    return pattern_matches(unfreeze_regex(pattern), name);
  };
  CHECK(matches("^lm_head.weight$", "lm_head.weight"));
  CHECK(!matches("^lm_head.weight$", "lm_headxweight"));  // the dot is literal
  CHECK(matches("model.layers.1.mlp.+", "model.layers.1.mlp.up_proj.weight"));
  CHECK(!matches("layers.1.mlp.+", "model.layers.1.mlp.up_proj.weight"));  // from the start, as re.match
  CHECK(matches("model.layers.[0-9]+.self_attn", "model.layers.12.self_attn.q_proj.weight"));
  // Axolotl's row ranges: [i], [a:b], [a:], [:b]; a class like [0-9] is part of the regex.
  const UnfreezePattern from = parse_unfreeze_pattern("^model.embed_tokens.weight$[32000:]");
  CHECK(from.regex == "^model.embed_tokens.weight$");
  CHECK((from.rows && from.rows->first == 32000 && !from.rows->second));
  CHECK(parse_unfreeze_pattern("model.embed_tokens.weight[:10]").rows->second == 10);
  CHECK(parse_unfreeze_pattern("lm_head.weight$[7]").rows->second == 8);
  CHECK(!parse_unfreeze_pattern("model.layers.[0-9]+.mlp").rows);
  CHECK(!parse_unfreeze_pattern("model.layers.[0-9]").rows);  // "[0-9]" ends it: a class, no range
  CHECK(parse_unfreeze_pattern("lm_head.weight[]").regex == "lm_head.weight");  // every row, as Axolotl's
  CHECK_THROWS_WITH(parse_unfreeze_pattern("a$[5:5]"), "a row range whose end is past its start");
  LlamaConfig tiny;
  tiny.vocab_size = 16, tiny.hidden_size = 8, tiny.intermediate_size = 16, tiny.num_hidden_layers = 2;
  tiny.num_attention_heads = 2, tiny.num_key_value_heads = 1;
  LlamaModel model(tiny, Device::cpu(), 1);
  std::vector<FrozenRows> frozen;
  CHECK(freeze_all_but(model, {"model.layers.0.+", "^model.norm"}, frozen) == 10);  // 9 of layer 0, the final norm
  CHECK(frozen.empty());
  CHECK(!model.layer(1).q_proj.requires_grad());
  CHECK(model.layer(0).down_proj.requires_grad());
  // Ranged patterns of one tensor merge; what they leave out is frozen, in order.
  const std::string embed = "^model.embed_tokens.weight$";
  CHECK(freeze_all_but(model, {embed + "[2:5]", embed + "[4:8]", embed + "[12:]"}, frozen) == 1);
  REQUIRE(frozen.size() == 1);
  CHECK(frozen[0].rows == std::vector<std::pair<int64_t, int64_t>>{{0, 2}, {8, 12}});
  CHECK_THROWS_WITH(freeze_all_but(model, {embed + "[10:17]"}, frozen),
                    "unfrozen_parameters: expected a row range within model.embed_tokens.weight's 16 rows, got "
                    "'^model.embed_tokens.weight$[10:17]'");
  CHECK_THROWS_WITH(freeze_all_but(model, {"nothing"}, frozen),
                    "unfrozen_parameters: expected a pattern matching at least one weight's name "
                    "(model.embed_tokens.weight, ...), got none matching");
  CHECK(parse("unfrozen_parameters: ['^lm_head.weight$']\n").unfrozen_parameters == std::vector<std::string>{"^lm_head.weight$"});
  // One string for a list of it (llm_fuzz found the scalar indexed as a list).
  CHECK(parse("unfrozen_parameters: ^lm_head.weight$\n").unfrozen_parameters == std::vector<std::string>{"^lm_head.weight$"});
  CHECK(parse("unfrozen_parameters: ['^model.embed_tokens.weight$[128000:]']\n").unfrozen_parameters.size() == 1);
  CHECK(error_with("unfrozen_parameters: ['a$[9:3]']\n") ==
        "cfg.yaml:3: unfrozen_parameters[0]: expected a row range whose end is past its start, got 'a$[9:3]'");
  CHECK(error_with("unfrozen_parameters: ['a$[3:]']\nzero_stage: 1\n") ==
        "cfg.yaml:3: unfrozen_parameters: expected zero_stage 0 with a row range (ZeRO shards the gradients it zeroes), "
        "got 'a$[3:]' with zero_stage 1");
  CHECK(error_with("unfrozen_parameters: ['model.(']\n").find("cfg.yaml:3: unfrozen_parameters[0]: expected a regular expression, got 'model.(' (") == 0);
  CHECK(error_with("unfrozen_parameters: ['" + std::string(513, '(') + "']\n") ==
        "cfg.yaml:3: unfrozen_parameters[0]: expected a pattern of at most 512 characters, got 513");
  CHECK(error_with("unfrozen_parameters: [x]\nadapter: lora\nlora_target_linear: true\n") ==
        "cfg.yaml:3: unfrozen_parameters: expected no adapter with it (an adapter run trains its adapters), got adapter: lora");
  CHECK(error_with("unfrozen_parameters: [x]\nzero_stage: 3\n") ==
        "cfg.yaml:3: unfrozen_parameters: expected ZeRO stage 0 to 2 with it (ZeRO-3 shards trained weights only), got zero_stage 3");
}

TEST_CASE("peft_layers_to_transform: one block index or a list, below num_hidden_layers, with an adapter") {
  const std::string lora = "adapter: lora\nlora_target_linear: true\n";
  CHECK(parse(lora + "peft_layers_to_transform: 1\n").lora.layers == std::vector<int64_t>{1});
  const TrainConfig c = parse(lora + "peft_layers_to_transform: [0, 1]\n");
  CHECK(c.lora.layers == std::vector<int64_t>{0, 1});
  CHECK(c.lora.adapts_layer(1));
  CHECK(!parse(lora + "peft_layers_to_transform: [1]\n").lora.adapts_layer(0));
  CHECK(error_with(lora + "peft_layers_to_transform: [0, 99]\n").find(
            "peft_layers_to_transform: expected block indices below num_hidden_layers") != std::string::npos);
  CHECK(error_with("peft_layers_to_transform: [0]\n") ==
        "cfg.yaml:3: peft_layers_to_transform: expected adapter: lora or qlora with it, got no adapter");
  CHECK(error_with(lora + "peft_layers_to_transform: []\n").find("expected a block index or a non-empty list of them") !=
        std::string::npos);
}

// Axolotl's Spectrum plugin, from a scan written as Python's json writes it (Infinity unquoted).
TEST_CASE("SpectrumPlugin: unfrozen_parameters from the SNR scan, top share per weight kind") {
  const std::string scan = R"({
    "model.layers.0.input_layernorm": {"snr": Infinity, "type": "input_layernorm"},
    "model.layers.1.input_layernorm": {"snr": Infinity, "type": "input_layernorm"},
    "lm_head": {"snr": Infinity, "type": "lm_head"},
    "model.layers.0.mlp.down_proj": {"snr": 1.5, "type": "mlp.down_proj"},
    "model.layers.1.mlp.down_proj": {"snr": 7.25, "type": "mlp.down_proj"},
    "model.layers.2.mlp.down_proj": {"snr": 3.0, "type": "mlp.down_proj"},
    "model.layers.3.mlp.down_proj": {"snr": 9.0, "type": "mlp.down_proj"},
    "model.layers.0.self_attn.q_proj": {"snr": 0.5, "type": "self_attn.q_proj"}
  })";
  CHECK(spectrum_unfrozen_parameters(scan, "scan.json", 0.5) ==
        std::vector<std::string>{"^lm_head.weight$", "^model.embed_tokens.weight$", "model.layers.0.input_layernorm",
                                 "model.layers.3.mlp.down_proj", "model.layers.1.mlp.down_proj"});
  CHECK(spectrum_snr_file("meta-llama/Llama-3.2_1B") == "model_snr_results/snr_results_meta-llama-Llama-3.2-1B.json");
  CHECK_THROWS_WITH(spectrum_unfrozen_parameters(R"({"lm_head": {"snr": "high", "type": "lm_head"}})", "scan.json", 0.5),
                    "scan.json: lm_head.snr: expected a number, got \"high\"");
  CHECK_THROWS_WITH(spectrum_unfrozen_parameters("[1]", "scan.json", 0.5),
                    "scan.json: expected Spectrum's SNR results: a map of weight names to {snr, type}, got a JSON array");
  // The plugin in a config: the scan of base_model as written, beside the config file.
  const Scratch& s = scratch();
  fs::create_directories(s.dir / "model_snr_results");
  s.write("model_snr_results/snr_results_tiny.json", scan);
  const std::string source = (s.dir / "cfg.yaml").string();
  const TrainConfig c = parse_config(base() + "base_model: tiny\nplugins:\n  - axolotl.integrations.spectrum.SpectrumPlugin\n"
                                     "spectrum_top_fraction: 0.25\n", source);
  CHECK(c.unfrozen_parameters == std::vector<std::string>{"^lm_head.weight$", "^model.embed_tokens.weight$",
                                                          "model.layers.3.mlp.down_proj"});
  CHECK(c.spectrum_top_fraction == 0.25);
  try {
    parse_config(base() + "plugins: [SpectrumPlugin]\nspectrum_model_name: other/model\n", source);
    FAIL("a missing scan was accepted");
  } catch (const UserError& e) {
    CHECK(std::string(e.what()) == source + ":3: plugins: expected Spectrum's SNR scan model_snr_results/snr_results_other-"
                                             "model.json beside the config or in the working directory (llm_train does not "
                                             "download it), got none for model other/model");
  }
}
