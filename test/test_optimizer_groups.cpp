// Tests for train/optimizer_groups: how each trained tensor joins AdamW (decay, learning-rate
// multiple) under Axolotl's embedding_lr_scale / embedding_lr / lr_groups, LoRA+ and the
// Trainer's default; and the config's checks of those keys. test_hf_trajectory holds the
// resulting steps to Axolotl's grouped AdamW.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "test/config_fixture.h"
#include "train/optimizer_groups.h"

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
