// Axolotl's keys beyond the basic ones: model_config's HF overrides, PEFT's further LoraConfig
// options, HF's best-model keys, the keys of Axolotl 0.19's schema that change training and are
// not built (each refused in one line), batch_size, gradient_checkpointing's forms, schedules'
// kwargs, eval and save steps and strategies, chat datasets' spellings, PEFT's regex targets and
// added_tokens_overrides.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "io/dataset.h"
#include "test/config_fixture.h"

using namespace llm;
using namespace llm::config_test;

// Axolotl sets HF config.json fields under model_config (a top-level rope_scaling is an error
// there); here they are the same fields as the top-level keys.
TEST_CASE("model_config: Axolotl's HF field overrides, read as the top-level keys") {
  const TrainConfig c = parse(
      "base_model: llama3-1b\nmodel_config:\n  rope_scaling: {rope_type: llama3, factor: 16, low_freq_factor: 1, "
      "high_freq_factor: 4, original_max_position_embeddings: 8192}\n"
      "  max_position_embeddings: 16384\n  use_cache: false\n  attention_dropout: 0.0\n");
  const TrainConfig top = parse("base_model: llama3-1b\nrope_scaling: {rope_type: llama3, factor: 16, low_freq_factor: 1, "
                                "high_freq_factor: 4, original_max_position_embeddings: 8192}\n"
                                "max_position_embeddings: 16384\n");
  CHECK(c.model.rope.factor == 16.0f);
  CHECK(c.model.max_position_embeddings == 16384);
  CHECK(config_to_yaml(c) == config_to_yaml(top));
  CHECK(c.unknown_keys.empty());
  // Axolotl's context-extension examples: YaRN over a longer max_position_embeddings, a pad id.
  const TrainConfig yarn = parse("model_config: {rope_scaling: {type: yarn, factor: 2.0, "
                                 "original_max_position_embeddings: 4096}, max_position_embeddings: 8192, pad_token_id: 2}\n");
  CHECK(yarn.model.rope.type == RopeType::yarn);
  CHECK(yarn.model.rope.original_max_position_embeddings == 4096);
  CHECK(yarn.model.max_position_embeddings == 8192);
  CHECK(yarn.model.pad_token_id == 2);
  CHECK(error_with("model_config: {rope_scaling: {rope_type: longrope, factor: 4}}\n") ==
        "cfg.yaml:3: model_config.rope_scaling.rope_type: expected llama3, linear, yarn or dynamic (the scalings "
        "built; longrope is not), got 'longrope'");
  CHECK(error_with("model_config: {hidden_act: gelu}\n") ==
        "cfg.yaml:3: model_config.hidden_act: expected silu (activations other than SwiGLU's silu are not built), got gelu");
  CHECK(starts_with(error_with("model_config: {sliding_window: 4096}\n"),
                    "cfg.yaml:3: model_config.sliding_window: expected one of the Llama config fields llm_train models ("));
  CHECK(error_with("rope_theta: 10000\nmodel_config: {rope_theta: 20000}\n") ==
        "cfg.yaml:4: model_config.rope_theta: expected each field once (in model_config, or as rope_theta), got both");
  CHECK(parse("pad_token_id: 2\nmodel_config: {pad_token_id: 2}\n").model.pad_token_id == 2);  // one value
  CHECK(error_with("model_config: 3\n") == "cfg.yaml:3: model_config: expected a map of HF config.json fields, got 3");
}

// Axolotl's RemappedParameters: the fields are overrides_of_model_config, type_of_model and
// overrides_of_model_kwargs, and model_config, model_type and model_kwargs their aliases; either
// spelling is read the same, and both at once are refused.
TEST_CASE("overrides_of_model_config, type_of_model, overrides_of_model_kwargs: Axolotl's field names of the aliases") {
  const TrainConfig named = parse("base_model: llama3-1b\noverrides_of_model_config:\n  rope_theta: 10000\n");
  const TrainConfig alias = parse("base_model: llama3-1b\nmodel_config:\n  rope_theta: 10000\n");
  CHECK(named.model.rope.theta == 10000.0f);
  CHECK(config_to_yaml(named) == config_to_yaml(alias));
  CHECK(named.unknown_keys.empty());
  CHECK(error_with("overrides_of_model_config: {hidden_act: gelu}\n") ==
        "cfg.yaml:3: overrides_of_model_config.hidden_act: expected silu (activations other than SwiGLU's silu are "
        "not built), got gelu");
  CHECK(error_with("model_config: {rope_theta: 1}\noverrides_of_model_config: {rope_theta: 2}\n") ==
        "cfg.yaml:4: overrides_of_model_config: expected model_config or overrides_of_model_config, not both, got both");
  CHECK(parse("type_of_model: LlamaForCausalLM\n").unknown_keys == std::vector<std::string>{"type_of_model"});
  CHECK(starts_with(error_with("type_of_model: MistralForCausalLM\n"), "cfg.yaml:3: type_of_model: not supported, "));
  CHECK(starts_with(error_with("overrides_of_model_kwargs: {device_map: auto}\n"),
                    "cfg.yaml:3: overrides_of_model_kwargs: not supported, "));
}

TEST_CASE("Axolotl 0.19 keys that change training and are not built: one line each, naming the key") {
  for (const char* key : {"trainer_cls: my.Trainer\n",
                          "sage_attention: true\n",
                          "model_type: BertForMaskedLM\n", "model_kwargs: {device_map: auto}\n",
                          "use_onebitllms: true\n", "lora_target_parameters: [mlp.experts.down_proj]\n"})
    CHECK_MESSAGE(error_with(key).find("cfg.yaml:3: " + std::string(key).substr(0, std::string(key).find(':')) +
                                       ": not supported, ") == 0, key);
  // A sequence classifier is a reward model's (test_reward_model), not a causal LM run's.
  CHECK(error_with("model_type: AutoModelForSequenceClassification\n") ==
        "cfg.yaml:3: model_type: expected reward_model: true with AutoModelForSequenceClassification, got neither "
        "reward_model nor process_reward_model");
  CHECK(parse("model_type: LlamaForCausalLM\nsage_attention: false\n").unknown_keys ==
        std::vector<std::string>{"model_type", "sage_attention"});
  CHECK(parse("lora_target_parameters: []\n").unknown_keys == std::vector<std::string>{"lora_target_parameters"});
  // A dataset entry's own shards (Axolotl's shuffle(seed).shard of its rows) are not built.
  CHECK(error_with("datasets: [{path: " + scratch().data + ", type: completion, shards: 3, shards_idx: 1}]\n")
            .find("shards: expected none: a dataset entry's own shards are not built") != std::string::npos);
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
  CHECK(plugin.unknown_keys.empty());  // `plugins` is read: it names a plugin whose keys are built
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
  CHECK(error_with(adapter + "peft_init_lora_weights: eva\n") ==
        "cfg.yaml:5: peft_init_lora_weights: expected true, false, gaussian, pissa, pissa_niter_K or olora (PEFT's "
        "other inits, eva, corda, loftq, orthogonal, ..., are not built), got 'eva'");
  for (const char* init : {"pissa", "pissa_niter_4", "pissa_niter_0", "olora"})
    CHECK(parse(adapter + "peft_init_lora_weights: " + init + "\n").lora.init == init);
  for (const char* junk : {"pissa_niter_", "pissa_niter_x", "pissa_niter_-1", "pissa_niter_99999", "OLoRA"})
    CHECK(error_with(adapter + "peft_init_lora_weights: " + junk + "\n").find("got '" + std::string(junk) + "'") !=
          std::string::npos);
  // The inits from the base weight: a float base, whole on every rank, not shared, not redrawn.
  const std::string pissa = adapter + "peft_init_lora_weights: pissa\n";
  CHECK(error_with("peft_init_lora_weights: olora\n") ==
        "cfg.yaml:3: peft_init_lora_weights: expected adapter: lora with olora, got no adapter");
  CHECK(error_with("adapter: qlora\nlora_target_linear: true\npeft_init_lora_weights: pissa\nload_in_4bit: true\n") ==
        "cfg.yaml:5: peft_init_lora_weights: expected a float base with pissa (PEFT inits PiSSA in f32, f16 or bf16 "
        "only; OLoRA on quantised codes is not built), got load_in_4bit");
  CHECK(error_with(pissa + "zero_stage: 3\n").find("expected zero_stage below 3 with pissa") != std::string::npos);
  CHECK(error_with(pissa + "relora: true\njagged_restart_steps: 4\n").find("expected no relora with pissa") !=
        std::string::npos);
  CHECK(error_with(pissa + "peft_layer_replication: [[0, 1]]\n").find(
            "expected no peft_layer_replication with pissa (each copy would change the shared base weight)") !=
        std::string::npos);
  CHECK(error_with(pissa + "rl: dpo\n").find("expected no rl with pissa (TRL's reference") != std::string::npos);
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

TEST_CASE("peft_trainable_token_indices: a list (embed_tokens) or a map; tied, lm_head reads the embedding's rows") {
  const std::string adapter = "adapter: lora\nlora_target_linear: true\n";
  const std::string untied = adapter + "tie_word_embeddings: false\n", tied = adapter + "tie_word_embeddings: true\n";
  const TrainConfig listed = parse(untied + "peft_trainable_token_indices: [7, 3]\n");
  CHECK(listed.lora.embed_token_rows == std::vector<int64_t>{7, 3});
  CHECK(listed.lora.head_token_rows.empty());
  const TrainConfig mapped = parse(untied + "peft_trainable_token_indices: {embed_tokens: [1], lm_head: [2, 4]}\n");
  CHECK(mapped.lora.embed_token_rows == std::vector<int64_t>{1});
  CHECK(mapped.lora.head_token_rows == std::vector<int64_t>{2, 4});
  // Tied: the same rows for both are the embedding's (PEFT ties them); other lm_head rows are refused.
  CHECK(parse(tied + "peft_trainable_token_indices: {embed_tokens: [5], lm_head: [5]}\n").lora.head_token_rows.empty());
  CHECK(error_with(tied + "peft_trainable_token_indices: {lm_head: [5]}\n") ==
        "cfg.yaml:6: peft_trainable_token_indices: expected on a tied model the rows of embed_tokens alone (lm_head reads "
        "them, as PEFT ties them when both name the same rows; two trained copies of one tied table are not built), got "
        "lm_head rows of their own");
  CHECK(error_with("peft_trainable_token_indices: [5]\n") ==
        "cfg.yaml:3: peft_trainable_token_indices: expected adapter: lora or qlora with it (PEFT's LoRA trains the rows), "
        "got no adapter");
  CHECK(error_with(untied + "peft_trainable_token_indices: [5, 6, 5]\n") ==
        "cfg.yaml:6: peft_trainable_token_indices[2]: expected each token id once, got 5 again");
  CHECK(error_with(untied + "peft_trainable_token_indices: {wte: [1]}\n") ==
        "cfg.yaml:6: peft_trainable_token_indices.wte: expected embed_tokens or lm_head (the tables whose rows train), got 'wte'");
  CHECK(error_with(untied + "peft_trainable_token_indices: {}\n") ==
        "cfg.yaml:6: peft_trainable_token_indices: expected a non-empty list of token ids or a map {embed_tokens: [ids], "
        "lm_head: [ids]}, got {}");
  CHECK(error_with(untied + "peft_trainable_token_indices: []\n") ==
        "cfg.yaml:6: peft_trainable_token_indices: expected a non-empty list of token ids, got an empty list");
  CHECK(error_with(untied + "lora_modules_to_save: [embed_tokens]\npeft_trainable_token_indices: [1]\n") ==
        "cfg.yaml:7: peft_trainable_token_indices: expected no embed_tokens rows with lora_modules_to_save: [embed_tokens] "
        "(PEFT refuses both), got both");
  CHECK(starts_with(error_with(untied + "relora: true\njagged_restart_steps: 2\npeft_trainable_token_indices: [1]\n"),
                    "cfg.yaml:8: peft_trainable_token_indices: expected no relora with it"));
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
  // Dynamic NTK's scaling past max_position_embeddings (history-dependent in transformers) is not
  // built: PoSE's skips must stay below it.
  const std::string dynamic = "sequence_len: 64\nmax_position_embeddings: 2048\nrope_scaling: {rope_type: dynamic, factor: 2}\n";
  CHECK(parse(dynamic + "use_pose: true\npose_max_context_len: 2048\n").model.rope.type == RopeType::dynamic);
  CHECK(error_with(dynamic + "use_pose: true\npose_max_context_len: 4096\n") ==
        "cfg.yaml:6: use_pose: expected pose_max_context_len at most max_position_embeddings, 2048, with rope_scaling "
        "dynamic (its scaling past that length is not built), got pose_max_context_len 4096");
}

// Axolotl's preference builder passes neither key to TRL's trainers, whose sampler is the Trainer's.
TEST_CASE("rl: dataloader_drop_last unused, drops nothing; pairs in a random order whatever curriculum_sampling says") {
  const std::string pairs = "datasets:\n  - path: " + scratch().data + "\n    type: llama3.intel\nrl: dpo\n";
  const TrainConfig c = parse(pairs + "dataloader_drop_last: true\ncurriculum_sampling: true\n");
  CHECK(std::find(c.unknown_keys.begin(), c.unknown_keys.end(), "dataloader_drop_last") != c.unknown_keys.end());
  CHECK(!c.data.drops_last_train_rows());
  CHECK(!c.data.drops_last_eval_rows());
  CHECK(row_order(c.data) == RowOrder::shuffled_per_epoch);
  CHECK(!c.data.merged_shuffled());  // a single dataset keeps its order under curriculum_sampling
  const TrainConfig sft = parse("dataloader_drop_last: true\ncurriculum_sampling: true\n");
  CHECK(std::find(sft.unknown_keys.begin(), sft.unknown_keys.end(), "dataloader_drop_last") == sft.unknown_keys.end());
  CHECK(sft.data.drops_last_train_rows());
  CHECK(row_order(sft.data) == RowOrder::as_given);
}

TEST_CASE("Axolotl keys that would change training stop the run: one line per key") {
  // An adapter on 8-bit weights is built; GPTQ weights and GRPO are not (DPO, ORPO and KTO are).
  std::string e;
  try {
    parse("adapter: lora\nlora_target_linear: true\nload_in_8bit: true\ngptq: true\n"
          "rl: grpo\nfp16:\ndeepspeed:\nfsdp: []\n");
  } catch (const UserError& err) {
    e = err.what();
  }
  CHECK(e == "cfg.yaml:6: gptq: not supported, GPTQ base weights are not built\n"
             "cfg.yaml:7: rl: not supported, rl: grpo is not built (GRPO and the other online trainers): "
             "rl: dpo, ipo, kto, orpo or simpo");
  // Set to nothing (null, false, an empty list), they change nothing and pass as unknown keys.
  CHECK(parse("gptq: false\nfp16:\nfsdp: []\ndeepspeed:\n").unknown_keys ==
        std::vector<std::string>{"fp16", "gptq"});  // deepspeed and fsdp are keys we read
}

TEST_CASE("batch_size: Axolotl's micro_batch_size x gradient_accumulation_steps, given instead of the latter") {
  CHECK(parse("micro_batch_size: 4\nbatch_size: 32\n").gradient_accumulation_steps == 8);
  CHECK(parse("micro_batch_size: 4\nbatch_size: 30\n").gradient_accumulation_steps == 7);  // floored, as Axolotl
  CHECK(parse("micro_batch_size: 4\nbatch_size: 32\ngradient_accumulation_steps:\n").gradient_accumulation_steps == 8);
  CHECK(error_with("gradient_accumulation_steps: 2\nbatch_size: 32\n") ==
        "cfg.yaml:4: batch_size: expected gradient_accumulation_steps or batch_size, not both, got both");
  CHECK(error_with("micro_batch_size: 4\nbatch_size: 2\n") ==
        "cfg.yaml:4: batch_size: expected at least micro_batch_size, 4, got 2");
}

TEST_CASE("gradient_checkpointing: true, false or Axolotl's offload") {
  const TrainConfig c = parse("gradient_checkpointing: offload\n");
  CHECK(c.gradient_checkpointing);
  CHECK(c.gradient_checkpointing_offload);
  CHECK(!parse("gradient_checkpointing: true\n").gradient_checkpointing_offload);
  CHECK(error_with("gradient_checkpointing: offload_disk\n") ==
        "cfg.yaml:3: gradient_checkpointing: expected true, false or offload (checkpoints offloaded to disk are not "
        "built; offload keeps them in host memory), got offload_disk");
  CHECK(error_with("gradient_checkpointing: 2\n") == "cfg.yaml:3: gradient_checkpointing: expected true or false or offload, got 2");
}

// Axolotl 0.19 turns gradient_checkpointing: offload into activation_offloading: true (its
// examples write the latter, e.g. 3b-qat-mxfp4.yaml).
TEST_CASE("activation_offloading: Axolotl's spelling of gradient_checkpointing: offload, which it requires") {
  for (const char* value : {"true", "legacy", "hidden_states"}) {
    CAPTURE(value);
    const TrainConfig c = parse(std::string("gradient_checkpointing: true\nactivation_offloading: ") + value + "\n");
    CHECK(c.gradient_checkpointing_offload);
    CHECK(c.unknown_keys.empty());
  }
  CHECK(!parse("gradient_checkpointing: true\nactivation_offloading: false\n").gradient_checkpointing_offload);
  CHECK(parse("gradient_checkpointing: offload\nactivation_offloading: false\n").gradient_checkpointing_offload);
  CHECK(parse("activation_offloading: false\n").unknown_keys.empty());
  CHECK(error_with("activation_offloading: true\n") ==
        "cfg.yaml:3: activation_offloading: expected gradient_checkpointing: true with it (Axolotl requires it), got "
        "gradient_checkpointing: false");
  CHECK(error_with("gradient_checkpointing: true\nactivation_offloading: disk\n") ==
        "cfg.yaml:4: activation_offloading: expected true, false, legacy or hidden_states (activations offloaded to "
        "disk are not built), got disk");
}

TEST_CASE("lr_scheduler_kwargs and lr_quadratic_warmup: only what the chosen schedule takes") {
  const TrainConfig c = parse("lr_scheduler: polynomial\nlr_scheduler_kwargs: {power: 2, lr_end: 1e-6}\n");
  CHECK(c.lr_scheduler_kwargs.power == 2);
  CHECK(c.lr_scheduler_kwargs.lr_end == 1e-6);
  CHECK(c.lr_scheduler_kwargs.num_cycles < 0);
  CHECK(parse("lr_scheduler: cosine\nlr_quadratic_warmup: true\n").lr_quadratic_warmup);
  CHECK(error_with("lr_scheduler: cosine\nlr_scheduler_kwargs: {power: 2}\n") ==
        "cfg.yaml:4: lr_scheduler_kwargs: expected arguments of lr_scheduler cosine, got power");
  CHECK(error_with("lr_scheduler_kwargs: {min_lr: 0.1}\n") ==
        "cfg.yaml:3: lr_scheduler_kwargs: expected arguments of lr_scheduler cosine, got min_lr");
  CHECK(error_with("lr_scheduler_kwargs: {eta_min: 0.1}\n") ==
        "cfg.yaml:3: lr_scheduler_kwargs.eta_min: expected one of num_cycles, power, lr_end, timescale, min_lr, "
        "min_lr_rate, warmup_lr_rate, min_lr_ratio, num_stable_steps, num_decay_steps, pct_start, div_factor, "
        "final_div_factor, base_momentum, max_momentum, factor, patience, threshold, cooldown, eps, warmup_type, "
        "decay_type, anneal_strategy, mode, threshold_mode, three_phase, cycle_momentum (the arguments of HF's "
        "schedulers, torch's OneCycleLR and ReduceLROnPlateau), got 'eta_min'");
  // HF's min-lr cosines need exactly one of min_lr and min_lr_rate; warmup_stable_decay its decay.
  const TrainConfig m = parse("lr_scheduler: cosine_with_min_lr\nlr_scheduler_kwargs: {min_lr: 1e-5}\n");
  CHECK(m.lr_scheduler_kwargs.min_lr == 1e-5);
  CHECK(error_with("lr_scheduler: cosine_with_min_lr\n") ==
        "cfg.yaml:3: lr_scheduler: expected lr_scheduler_kwargs with one of min_lr and min_lr_rate for lr_scheduler "
        "cosine_with_min_lr (as HF's), got neither");
  CHECK(error_with("lr_scheduler: cosine_warmup_with_min_lr\nlr_scheduler_kwargs: {min_lr: 1e-5, min_lr_rate: 0.1}\n")
            .find("got both") != std::string::npos);
  CHECK(error_with("lr_scheduler: warmup_stable_decay\n") ==
        "cfg.yaml:3: lr_scheduler: expected lr_scheduler_kwargs with num_decay_steps for lr_scheduler warmup_stable_decay "
        "(as HF's), got none");
  CHECK(error_with("lr_scheduler: warmup_stable_decay\nlr_scheduler_kwargs: {num_decay_steps: 2, decay_type: exp}\n") ==
        "cfg.yaml:4: lr_scheduler_kwargs.decay_type: expected one of linear, cosine, 1-sqrt, got 'exp'");
  CHECK(error_with("lr_scheduler: linear\nlr_scheduler_kwargs: {decay_type: linear}\n") ==
        "cfg.yaml:4: lr_scheduler_kwargs: expected arguments of lr_scheduler linear, got decay_type");
  // HF's constant schedule is built without them.
  CHECK(parse("lr_scheduler: constant\nlr_scheduler_kwargs: {power: 2}\n").lr_scheduler_kwargs.power == 2);
  CHECK(error_with("lr_scheduler: linear\nlr_quadratic_warmup: true\n") ==
        "cfg.yaml:4: lr_quadratic_warmup: expected lr_scheduler: cosine with it, got lr_scheduler: linear");
  // transformers' polynomial raises unless its end lies below the optimizer's rate.
  CHECK(error_with("lr_scheduler: polynomial\nlearning_rate: 0.001\nlr_scheduler_kwargs: {lr_end: 0.002}\n") ==
        "cfg.yaml:5: lr_scheduler_kwargs: expected lr_end below learning_rate 0.001 with lr_scheduler polynomial "
        "(transformers raises otherwise), got lr_end 0.002");
  CHECK(starts_with(error_with("lr_scheduler: polynomial\nlearning_rate: 1e-8\n"),
                    "cfg.yaml:4: learning_rate: expected lr_end below learning_rate 1e-08"));
  // Axolotl builds RexLR without lr_scheduler_kwargs: unused there, not refused.
  CHECK(parse("lr_scheduler: rex\nlr_scheduler_kwargs: {num_cycles: 2}\n").adjustments.back() ==
        "lr_scheduler_kwargs: unused with lr_scheduler rex, which Axolotl builds without them");
}

TEST_CASE("reduce_lr_on_plateau: torch's ReduceLROnPlateau arguments; min_lr its floor") {
  const TrainConfig c = parse("lr_scheduler: reduce_lr_on_plateau\nlr_scheduler_kwargs: {factor: 0.5, patience: 2, "
                              "threshold_mode: abs, min_lr: 1e-6}\n");
  CHECK(c.lr_scheduler_kwargs.factor == 0.5);
  CHECK(c.lr_scheduler_kwargs.patience == 2);
  CHECK(c.lr_scheduler_kwargs.threshold_mode == "abs");
  CHECK(c.lr_scheduler_kwargs.min_lr == 1e-6);
  CHECK(error_with("lr_scheduler: reduce_lr_on_plateau\nlr_scheduler_kwargs: {factor: 1}\n") ==
        "cfg.yaml:4: lr_scheduler_kwargs.factor: expected a number in [0, 1), got 1");
  CHECK(error_with("lr_scheduler: cosine\nlr_scheduler_kwargs: {patience: 3}\n") ==
        "cfg.yaml:4: lr_scheduler_kwargs: expected arguments of lr_scheduler cosine, got patience");
}

TEST_CASE("one_cycle: torch's OneCycleLR arguments, and no per-group rates or jagged restarts with it") {
  const TrainConfig c = parse("lr_scheduler: one_cycle\nlr_scheduler_kwargs: {pct_start: 0.25, anneal_strategy: linear, "
                              "three_phase: true, cycle_momentum: false, div_factor: 10, final_div_factor: 100, "
                              "base_momentum: 0.8, max_momentum: 0.9}\n");
  CHECK(c.lr_scheduler_kwargs.pct_start == 0.25);
  CHECK(c.lr_scheduler_kwargs.anneal_strategy == "linear");
  CHECK(c.lr_scheduler_kwargs.three_phase == true);
  CHECK(c.lr_scheduler_kwargs.cycle_momentum == false);
  CHECK(c.lr_scheduler_kwargs.max_momentum == 0.9);
  CHECK(!parse("lr_scheduler: one_cycle\n").lr_scheduler_kwargs.three_phase.has_value());
  CHECK(error_with("lr_scheduler: one_cycle\nlr_scheduler_kwargs: {anneal_strategy: cosine}\n") ==
        "cfg.yaml:4: lr_scheduler_kwargs.anneal_strategy: expected one of cos, linear, got 'cosine'");
  CHECK(error_with("lr_scheduler: cosine\nlr_scheduler_kwargs: {three_phase: true}\n") ==
        "cfg.yaml:4: lr_scheduler_kwargs: expected arguments of lr_scheduler cosine, got three_phase");
  CHECK(error_with("lr_scheduler: one_cycle\nlr_scheduler_kwargs: {num_cycles: 2}\n") ==
        "cfg.yaml:4: lr_scheduler_kwargs: expected arguments of lr_scheduler one_cycle, got num_cycles");
  CHECK(error_with("lr_scheduler: one_cycle\nembedding_lr_scale: 0.5\n") ==
        "cfg.yaml:4: embedding_lr_scale: expected no embedding_lr_scale with lr_scheduler one_cycle (torch's "
        "OneCycleLR runs every parameter group at learning_rate), got both");
  CHECK(error_with("lr_scheduler: one_cycle\njagged_restart_steps: 50\n") ==
        "cfg.yaml:4: jagged_restart_steps: expected no jagged_restart_steps with lr_scheduler one_cycle (torch's "
        "OneCycleLR refuses the restarts' extra last step), got both");
}

TEST_CASE("eval_steps / save_steps: whole steps, or below 1 HF's share of the total steps") {
  CHECK(parse("eval_steps: 0.25\n").eval_steps == doctest::Approx(0.25));
  CHECK(parse("save_steps: 20\n").save_steps == 20);
  CHECK(error_with("eval_steps: 2.5\n") ==
        "cfg.yaml:3: eval_steps: expected a whole number of steps >= 1 or a share of the total steps in (0, 1), got 2.5");
  CHECK(error_with("save_steps: 0\n").find("cfg.yaml:3: save_steps: expected a number > 0") == 0);
}

TEST_CASE("eval_strategy / save_strategy: HF's epoch and no, as Axolotl passes them on") {
  // Unset stays unset (the trainer then evaluates and saves once an epoch, test_train), with or
  // without counts.
  const TrainConfig counted = parse("eval_steps: 5\nsaves_per_epoch: 2\n");
  CHECK((counted.eval_strategy.empty() && counted.save_strategy.empty() && counted.saves_per_epoch == 2));
  CHECK(parse("eval_strategy: epoch\n").eval_strategy == "epoch");
  CHECK(parse("save_strategy: epoch\nsaves_per_epoch: 4\n").saves_per_epoch == 4);  // saves by its share
  // Axolotl's validator: evals_per_epoch only beside eval_strategy steps (or none).
  CHECK(error_with("eval_strategy: epoch\nevals_per_epoch: 4\n") ==
        "cfg.yaml:4: evals_per_epoch: expected no evals_per_epoch with eval_strategy: epoch, got 4");
  const TrainConfig none = parse("eval_strategy: no\nsave_strategy: no\n");
  CHECK((none.eval_steps < 0 && none.evals_per_epoch < 0 && none.save_steps < 0 && none.saves_per_epoch < 0));
  CHECK(parse("eval_strategy: steps\neval_steps: 5\n").eval_steps == 5);
  CHECK(parse("evaluation_strategy: epoch\n").eval_strategy == "epoch");  // HF's older name
  CHECK(parse("evaluation_strategy: epoch\neval_strategy: \"no\"\n").eval_strategy == "no");  // the new one wins
  CHECK(error_with("eval_strategy: epoch\neval_steps: 5\n") ==
        "cfg.yaml:4: eval_steps: expected no eval_steps with eval_strategy: epoch, got 5");
  CHECK(error_with("save_strategy: no\nsaves_per_epoch: 2\n") ==
        "cfg.yaml:4: saves_per_epoch: expected no saves_per_epoch with save_strategy: no, got 2");
  CHECK(error_with("save_strategy: often\n") == "cfg.yaml:3: save_strategy: expected one of steps, epoch, no, best, got 'often'");
  // Axolotl keys whose training is not built stop the run (its native diffusion models; QAT's
  // other schemes stop in test_qat, llmcompressor's other modifiers in test_constant_pruning).
  CHECK_MESSAGE(error_with("diffusion_lm: {from_causal_lm: false}\n").find(": not supported, ") != std::string::npos,
                "diffusion_lm");
  // The DiffusionPlugin's map is built (test_diffusion), with its plugin only.
  CHECK(error_with("diffusion: {noise_schedule: cosine}\n").find(
            "diffusion: expected plugins: [axolotl.integrations.diffusion.DiffusionPlugin] with it") != std::string::npos);
  // pretraining_dataset is built (test_pretraining); `streaming` alone, streamed `datasets`, is not.
  CHECK(error_with("streaming: true\n").find("streaming: expected pretraining_dataset with it") != std::string::npos);
  // DoRA is built, for adapters only (test_lora_peft holds it to PEFT).
  CHECK(error_with("peft_use_dora: true\n") == "cfg.yaml:3: peft_use_dora: expected adapter: lora or qlora with it, got no adapter");
  // LoRA+ is built, for adapters only (test_hf_trajectory holds it to PEFT's optimizer).
  CHECK(error_with("loraplus_lr_ratio: 16\n") ==
        "cfg.yaml:3: loraplus_lr_ratio: expected adapter: lora or qlora with it, got no adapter");
}

TEST_CASE("chat datasets: the top-level chat_template is the default; older field spellings") {
  const std::string entry = "datasets:\n  - path: " + scratch().data + "\n    type: chat_template\n"
                            "    message_field_role: from\n    message_field_content: value\n";
  TrainConfig c = parse_config(entry + "chat_template: chatml\n", "cfg.yaml");
  CHECK(c.data.datasets[0].chat_template == "chatml");
  CHECK(c.data.datasets[0].message_property_mappings.at("role") == "from");
  CHECK(c.data.datasets[0].message_property_mappings.at("content") == "value");
  // Unset: the tokenizer's own, llama3 where the tokenizer has none (as here), which the start-up
  // says, since Axolotl's default (tokenizer_default) stops there.
  const TrainConfig unset = parse_config(entry, "cfg.yaml");
  CHECK(unset.data.datasets[0].chat_template == "tokenizer_default_fallback_llama3");
  CHECK(unset.data.datasets[0].chat_template_source.empty());
  CHECK(unset.adjustments == std::vector<std::string>{
                                 "chat_template unset: the tokenizer has no chat template, so the built-in llama3 one "
                                 "renders (this default is tokenizer_default_fallback_llama3; Axolotl's, "
                                 "tokenizer_default, stops on such a tokenizer)"});
  CHECK(parse_config(entry + "chat_template: tokenizer_default_fallback_llama3\n", "cfg.yaml").adjustments.empty());
  CHECK(parse_config(entry + "    chat_template: llama3\nchat_template: chatml\n", "cfg.yaml")
            .data.datasets[0].chat_template == "llama3");
}

TEST_CASE("lora_target_modules as one regular expression: PEFT's re.fullmatch on module names, and its refusals") {
  const TrainConfig c = parse("adapter: lora\nlora_target_modules: 'model\\.layers\\.0\\..*_proj'\n");
  CHECK(c.lora.target_pattern == "model\\.layers\\.0\\..*_proj");
  CHECK(c.lora.adapts(0, 0));
  CHECK(!c.lora.adapts(1, 0));
  CHECK(parse_config(config_to_yaml(c), "re.yaml").lora.target_pattern == c.lora.target_pattern);
  // PEFT matches a list's entries as suffixes: a linear's path in the block names it too.
  CHECK(parse("adapter: lora\nlora_target_modules: [self_attn.q_proj, mlp.down_proj, v_proj]\n").lora.target_modules ==
        std::vector<std::string>{"q_proj", "down_proj", "v_proj"});
  CHECK(starts_with(error_with("adapter: lora\nlora_target_modules: [mlp.q_proj]\n"),
                    "cfg.yaml:4: lora_target_modules: expected a list of q_proj, k_proj"));
  // PEFT would adapt the embedding or lm_head, or refuse a norm, a block or an MLP as a whole.
  CHECK(error_with("adapter: lora\nlora_target_modules: '.*'\n") ==
        "cfg.yaml:4: lora_target_modules: expected a pattern matching only the blocks' linear layers (LoRA on "
        "embeddings, lm_head or whole modules is not built), got '.*', which matches model");
  CHECK(error_with("adapter: lora\nlora_target_modules: '.*(proj|norm)'\n").find("which matches model.norm") !=
        std::string::npos);
  CHECK(error_with("adapter: lora\nlora_target_modules: q_proj\n") ==
        "cfg.yaml:4: lora_target_modules: expected a pattern matching some block's linear layer, e.g. "
        "model.layers.0.self_attn.q_proj, got 'q_proj', which matches none");
  // std::regex recurses per character: a pattern past 512 characters is refused before it is
  // compiled (100 000 of them overflowed the stack).
  CHECK(error_with("adapter: lora\nlora_target_modules: '" + std::string(100000, 'q') + "'\n") ==
        "cfg.yaml:4: lora_target_modules: expected a list of module names, or one valid regular expression of at most "
        "512 characters, got 100000 characters");
  CHECK(error_with("adapter: lora\nlora_rank_pattern: {'" + std::string(600, '(') + "': 4}\n").find(
            "expected a regular expression of module names as the key of at most 512 characters, got 600 characters") !=
        std::string::npos);
  CHECK(error_with("adapter: lora\nlora_target_modules: '(q'\n").rfind(
            "cfg.yaml:4: lora_target_modules: expected a list of module names, or one valid regular expression, got '(q' (", 0) == 0);
  CHECK(error_with("adapter: lora\nlora_target_modules: '.*_proj'\nlora_target_linear: true\n") ==
        "cfg.yaml:5: lora_target_linear: expected false with a lora_target_modules pattern (which names the targets), got true");
}

TEST_CASE("added_tokens_overrides: {token id: new name}") {
  CHECK(parse("added_tokens_overrides: {128011: '<|im_start|>'}\n").added_tokens_overrides.at(128011) == "<|im_start|>");
  CHECK(error_with("added_tokens_overrides: {im_start: '<|im_start|>'}\n") ==
        "cfg.yaml:3: added_tokens_overrides.im_start: expected a token id (a whole number) as the key, got 'im_start'");
  CHECK(error_with("added_tokens_overrides: {99999999999999999999: '<|x|>'}\n").find("got '99999999999999999999'") !=
        std::string::npos);
  CHECK(error_with("added_tokens_overrides: [128011]\n").find("expected a map {token id: new name}") != std::string::npos);
}

TEST_CASE("fix_untrained_tokens: an int or a list of ids, as Axolotl's schema reads it") {
  CHECK(!parse("").fix_untrained_tokens);
  CHECK(parse("fix_untrained_tokens: true\n").fix_untrained_tokens);
  CHECK(parse("fix_untrained_tokens: 1\n").fix_untrained_tokens);
  CHECK(parse("fix_untrained_tokens: 128011\n").fix_untrained_token_ids.empty());  // an int names no id
  CHECK(!parse("fix_untrained_tokens: 0\n").fix_untrained_tokens);
  const TrainConfig listed = parse("fix_untrained_tokens: [128011, 128012]\n");
  CHECK(listed.fix_untrained_tokens);
  CHECK(listed.fix_untrained_token_ids == std::vector<int64_t>{128011, 128012});
  CHECK(!parse("fix_untrained_tokens: []\n").fix_untrained_tokens);
  CHECK(error_with("fix_untrained_tokens: maybe\n") ==
        "cfg.yaml:3: fix_untrained_tokens: expected true or false, an integer or a list of token ids, got 'maybe'");
  CHECK(error_with("fix_untrained_tokens: true\nzero_stage: 3\n") ==
        "cfg.yaml:3: fix_untrained_tokens: expected ZeRO stage 0 to 2 with it (ZeRO-3 shards embed_tokens), got zero_stage 3");
}

