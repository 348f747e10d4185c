// Axolotl's keys beyond the basic ones: model_config's HF overrides, PEFT's further LoraConfig
// options, HF's best-model keys, and the keys of Axolotl 0.19's schema that change training and
// are not built (each refused in one line).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "test/config_fixture.h"

using namespace llm;
using namespace llm::config_test;

// Axolotl sets HF config.json fields under model_config (a top-level rope_scaling is an error
// there); here they are the same fields as the top-level keys.
TEST_CASE("model_config: Axolotl's HF field overrides, read as the top-level keys") {
  const TrainConfig c = parse(
      "base_model: llama3-1b\nmodel_config:\n  rope_scaling: {rope_type: llama3, factor: 16}\n"
      "  max_position_embeddings: 16384\n  use_cache: false\n  attention_dropout: 0.0\n");
  const TrainConfig top = parse("base_model: llama3-1b\nrope_scaling: {rope_type: llama3, factor: 16}\n"
                                "max_position_embeddings: 16384\n");
  CHECK(c.model.rope.factor == 16.0f);
  CHECK(c.model.max_position_embeddings == 16384);
  CHECK(config_to_yaml(c) == config_to_yaml(top));
  CHECK(c.unknown_keys.empty());
  CHECK(error_with("model_config: {rope_scaling: {rope_type: yarn, factor: 4}}\n") ==
        "cfg.yaml:3: model_config.rope_scaling.rope_type: expected one of llama3, got 'yarn'");
  CHECK(error_with("model_config: {hidden_act: gelu}\n") ==
        "cfg.yaml:3: model_config.hidden_act: expected silu (activations other than SwiGLU's silu are not built), got gelu");
  CHECK(starts_with(error_with("model_config: {sliding_window: 4096}\n"),
                    "cfg.yaml:3: model_config.sliding_window: expected one of the Llama config fields llm_train models ("));
  CHECK(error_with("rope_theta: 10000\nmodel_config: {rope_theta: 20000}\n") ==
        "cfg.yaml:4: model_config.rope_theta: expected each field once (in model_config, or as rope_theta), got both");
  CHECK(error_with("model_config: 3\n") == "cfg.yaml:3: model_config: expected a map of HF config.json fields, got 3");
}

TEST_CASE("Axolotl 0.19 keys that change training and are not built: one line each, naming the key") {
  for (const char* key : {"shrink_embeddings: true\n", "trainer_cls: my.Trainer\n", "scaling_softmax: true\n",
                          "sage_attention: true\n", "streaming: true\n", "peft_trainable_token_indices: [5]\n",
                          "model_type: AutoModelForSequenceClassification\n", "model_kwargs: {device_map: auto}\n"})
    CHECK_MESSAGE(error_with(key).find("cfg.yaml:3: " + std::string(key).substr(0, std::string(key).find(':')) +
                                       ": not supported, ") == 0, key);
  CHECK(parse("model_type: LlamaForCausalLM\nscaling_softmax: false\n").unknown_keys ==
        std::vector<std::string>{"model_type", "scaling_softmax"});
}

TEST_CASE("use_eaft, eaft_alpha, eaft_k: Axolotl's defaults, bounds, and not with rl") {
  const TrainConfig c = parse("use_eaft: true\n");
  CHECK(c.use_eaft);
  CHECK(c.eaft_alpha == 1.0);
  CHECK(c.eaft_k == 20);
  CHECK(error_with("use_eaft: true\neaft_k: 65\n") == "cfg.yaml:4: eaft_k: expected an integer in [1, 64], got 65");
  CHECK(starts_with(error_with("use_eaft: true\neaft_alpha: -1\n"), "cfg.yaml:4: eaft_alpha: expected "));
  const std::string pairs = "datasets:\n  - path: " + scratch().data + "\n    type: llama3.intel\nrl: dpo\n";
  CHECK(error_of(pairs + "use_eaft: true\n").find("use_eaft: expected no rl (EAFT weighs the supervised loss") !=
        std::string::npos);
  CHECK(error_with("use_eaft: true\nvocab_size: 16\neaft_k: 20\n") ==
        "cfg.yaml:3: use_eaft: expected eaft_k at most vocab_size, 16, got eaft_k 20");
}

// Axolotl's examples/dft spells it use_dft, its DFT plugin enable_dft_loss.
TEST_CASE("use_dft and enable_dft_loss: the same loss; dft_chunk_size speed only; not with rl or EAFT") {
  CHECK(parse("use_dft: true\n").use_dft);
  const TrainConfig plugin =
      parse("plugins: [axolotl.integrations.dft.DFTPlugin]\nenable_dft_loss: true\ndft_chunk_size: 2048\n");
  CHECK(plugin.use_dft);
  CHECK(plugin.speed_only_keys == std::vector<std::string>{"dft_chunk_size"});
  CHECK(error_with("use_dft: true\nuse_eaft: true\n") ==
        "cfg.yaml:3: use_dft: expected use_eaft false with it (one weighting of the loss at a time), got use_eaft: true");
  const std::string pairs = "datasets:\n  - path: " + scratch().data + "\n    type: llama3.intel\nrl: dpo\n";
  CHECK(error_of(pairs + "enable_dft_loss: true\n").find("enable_dft_loss: expected no rl (DFT weighs") != std::string::npos);
  CHECK(error_with("use_dft: true\nenable_dft_channel_loss: true\n").find("enable_dft_channel_loss: not supported, ") !=
        std::string::npos);
}

TEST_CASE("PEFT's options: inits, the keys whose one built value is PEFT's default, rank and alpha patterns") {
  // PEFT's options whose one built value is its default, and the inits built.
  const std::string adapter = "adapter: lora\nlora_target_linear: true\n";
  CHECK(error_with(adapter + "peft_init_lora_weights: pissa\n") ==
        "cfg.yaml:5: peft_init_lora_weights: expected true, false or gaussian (PEFT's other inits, pissa, olora, eva, "
        "corda, loftq, orthogonal, ..., are not built), got 'pissa'");
  CHECK(parse(adapter + "peft_init_lora_weights: false\n").lora.init == "false");
  CHECK(error_with(adapter + "peft_autocast_adapter_dtype: false\n") ==
        "cfg.yaml:5: peft_autocast_adapter_dtype: expected true (adapters train in f32; kept in bf16 is not built), got false");
  CHECK(error_with(adapter + "peft_layers_pattern: [h]\n") ==
        "cfg.yaml:5: peft_layers_pattern: expected layers (Llama's block list), got a list");
  // PEFT's rank and alpha patterns (test_lora_peft holds them to PEFT): adapters only, valid patterns,
  // positive values.
  CHECK(error_with("lora_rank_pattern: {q_proj: 16}\n") ==
        "cfg.yaml:3: lora_rank_pattern: expected adapter: lora or qlora with it, got no adapter");
  CHECK(error_with(adapter + "lora_rank_pattern: {q_proj: 0}\n") ==
        "cfg.yaml:5: lora_rank_pattern.q_proj: expected an integer in [1, 1048576], got 0");
  CHECK(error_with(adapter + "lora_alpha_pattern: {'(q_proj': 4}\n").rfind(
            "cfg.yaml:5: lora_alpha_pattern.(q_proj: expected a regular expression of module names as the key, got '(q_proj' (",
            0) == 0);
  CHECK(error_with(adapter + "lora_alpha_pattern: [q_proj]\n") ==
        "cfg.yaml:5: lora_alpha_pattern: expected a map {module-name pattern: alpha}, got a list");
}

TEST_CASE("HF's best-model keys: eval_loss, lower better, is the one metric built") {
  CHECK(error_with("greater_is_better: true\n") == "cfg.yaml:3: greater_is_better: expected false (a lower eval_loss is better), got true");
  CHECK(error_with("metric_for_best_model: accuracy\n") ==
        "cfg.yaml:3: metric_for_best_model: expected one of loss, eval_loss, got 'accuracy'");
  CHECK(parse("load_best_model_at_end: true\nmetric_for_best_model: loss\ngreater_is_better: false\n").load_best_model_at_end);
}

TEST_CASE("use_pose: its context length needed and at least sequence_len; with packing, not with rl") {
  const TrainConfig c = parse("use_pose: true\npose_max_context_len: 4096\npose_split_on_token_ids: [128009, 7]\n");
  CHECK(c.data.use_pose);
  CHECK(c.data.pose.max_context_len == 4096);
  CHECK(c.data.pose.split_on_token_ids == std::vector<int32_t>{128009, 7});
  CHECK(c.data.pose.chunks == 2);
  CHECK(error_with("use_pose: true\n") ==
        "cfg.yaml:3: use_pose: expected pose_max_context_len with it (the context the skips reach), got none");
  CHECK(starts_with(error_with("use_pose: true\npose_max_context_len: 8\nsequence_len: 64\n"),
                    "cfg.yaml:3: use_pose: expected pose_max_context_len at least sequence_len, 64"));
  CHECK(parse("use_pose: true\npose_max_context_len: 4096\nsample_packing: true\nflash_attention: true\n").data.sample_packing);
  CHECK(parse("use_pose: true\npose_max_context_len: 4096\ncurriculum_sampling: true\n").data.curriculum_sampling);
  const std::string pairs = "datasets:\n  - path: " + scratch().data + "\n    type: llama3.intel\nrl: dpo\n";
  CHECK(error_of(pairs + "use_pose: true\npose_max_context_len: 4096\n").find("use_pose: expected no rl with it") !=
        std::string::npos);
  CHECK(starts_with(error_with("pose_split_on_token_ids: 5\n"), "cfg.yaml:3: pose_split_on_token_ids: expected a list of token ids"));
}
