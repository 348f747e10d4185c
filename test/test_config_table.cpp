// Tests for train/config's field table: config_to_yaml round trips (every field, every key of
// the table), the defaults, the example configs, config_keys() and README.md's key table.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <string>

#include "model/hf_config.h"
#include "test/config_fixture.h"
#include "test/llama_config_check.h"
#include "train/config_fields.h"
#include "train/memory_plan.h"

using namespace llm;
using namespace llm::config_test;

namespace {

// Every field but unknown_keys, which config_to_yaml does not carry.
void check_same(const TrainConfig& a, const TrainConfig& b) {
#define SAME(field) CHECK_MESSAGE(a.field == b.field, #field)
  llm::testing::check_same_llama_config(a.model, b.model);
  SAME(source); SAME(base_model); SAME(data.datasets.size());
  SAME(data.source); SAME(data.dataset_prepared_path); SAME(data.val_set_size);
  SAME(data.test_datasets.size());
  SAME(data.sample_packing); SAME(data.sequence_len); SAME(data.train_on_inputs);
  SAME(data.excess_length_strategy); SAME(data.min_sample_len); SAME(data.eval_sample_packing); SAME(data.pad_to_sequence_len);
  SAME(data.curriculum_sampling); SAME(data.shuffle_merged_datasets); SAME(data.shuffle_before_merging_datasets); SAME(data.shard_num); SAME(data.shard_idx); SAME(data.dataloader_drop_last); SAME(data.use_pose); SAME(data.pose.max_context_len); SAME(data.pose.split_on_token_ids); SAME(data.pose.chunks);
  SAME(data.exact_deduplication); SAME(data.sample_packing_sequentially); SAME(data.sample_packing_bin_size);
  SAME(data.sample_packing_group_size); SAME(data.multipack_real_batches);
  SAME(data.group_by_length);
  SAME(dataloader_num_workers); SAME(dataloader_pin_memory); SAME(dataloader_prefetch_factor); SAME(data.eval_sequence_len);
  SAME(streaming); SAME(pretraining_sample_concatenation); SAME(pretrain_multipack_attn); SAME(data.streaming_buffer_size);
  SAME(data.pretraining.has_value());
  if (a.data.pretraining && b.data.pretraining) {
    const PretrainingSource &p = *a.data.pretraining, &q = *b.data.pretraining;
    CHECK((p.spec.path == q.spec.path && p.spec.field == q.spec.field && p.completion == q.completion &&
           p.skip == q.skip && p.buffer_size == q.buffer_size));
  }
  SAME(data.chat_template); SAME(data.chat_template_jinja); SAME(data.eot_tokens); SAME(data.chat_template_kwargs); SAME(special_tokens.bos_token); SAME(special_tokens.eos_token);
  SAME(special_tokens.pad_token); SAME(added_tokens_overrides); SAME(tokens); SAME(resize_token_embeddings_to_32x); SAME(mean_resizing_embeddings); SAME(auto_find_batch_size);
  SAME(micro_batch_size); SAME(eval_batch_size); SAME(gradient_accumulation_steps); SAME(num_epochs); SAME(max_steps);
  SAME(learning_rate); SAME(lr_scheduler); SAME(warmup_steps); SAME(warmup_ratio);
  SAME(cosine_min_lr_ratio); SAME(cosine_constant_lr_ratio); SAME(optimizer); SAME(adam_beta1); SAME(adam_beta2);
  SAME(adam_epsilon); SAME(adam_beta3); SAME(adam_epsilon2); SAME(weight_decay); SAME(embedding_lr_scale); SAME(embedding_lr); SAME(lr_groups.size()); SAME(unfrozen_parameters);
  SAME(lr_quadratic_warmup); SAME(qat); SAME(qat_fake_quant_after_n_steps); SAME(lisa_n_layers); SAME(relora); SAME(relora_prune_method); SAME(relora_prune_ratio); SAME(jagged_restart_steps); SAME(jagged_restart_warmup_steps); SAME(jagged_restart_anneal_steps); SAME(lisa_step_interval); SAME(pruning_targets); SAME(save_compressed); SAME(fp8); SAME(neftune_noise_alpha); SAME(use_eaft); SAME(eaft_alpha); SAME(eaft_k); SAME(use_dft); SAME(spectrum_top_fraction); SAME(spectrum_model_name); SAME(lr_scheduler_kwargs.num_cycles); SAME(lr_scheduler_kwargs.power);
  SAME(lr_scheduler_kwargs.lr_end); SAME(lr_scheduler_kwargs.timescale); SAME(lr_scheduler_kwargs.min_lr);
  SAME(lr_scheduler_kwargs.min_lr_rate); SAME(lr_scheduler_kwargs.warmup_lr_rate); SAME(lr_scheduler_kwargs.min_lr_ratio);
  SAME(lr_scheduler_kwargs.num_stable_steps); SAME(lr_scheduler_kwargs.num_decay_steps);
  SAME(lr_scheduler_kwargs.warmup_type); SAME(lr_scheduler_kwargs.decay_type);
  SAME(lr_scheduler_kwargs.pct_start); SAME(lr_scheduler_kwargs.div_factor); SAME(lr_scheduler_kwargs.final_div_factor);
  SAME(lr_scheduler_kwargs.base_momentum); SAME(lr_scheduler_kwargs.max_momentum);
  SAME(lr_scheduler_kwargs.anneal_strategy); SAME(lr_scheduler_kwargs.three_phase); SAME(lr_scheduler_kwargs.cycle_momentum);
  SAME(lr_scheduler_kwargs.factor); SAME(lr_scheduler_kwargs.patience); SAME(lr_scheduler_kwargs.threshold);
  SAME(lr_scheduler_kwargs.cooldown); SAME(lr_scheduler_kwargs.eps); SAME(lr_scheduler_kwargs.mode);
  SAME(lr_scheduler_kwargs.threshold_mode); SAME(optim_args); SAME(optim_target_modules); SAME(optim_target_all_linear);
  SAME(qgalore.rank); SAME(qgalore.update_proj_gap); SAME(qgalore.scale); SAME(qgalore.proj_quant); SAME(qgalore.proj_bits);
  SAME(qgalore.proj_group_size); SAME(qgalore.cos_threshold); SAME(qgalore.gamma_proj); SAME(qgalore.queue_size);
  SAME(fix_untrained_tokens); SAME(fix_untrained_token_ids); SAME(average_tokens_across_devices);
  SAME(max_grad_norm); SAME(seed); SAME(bf16); SAME(tf32); SAME(bfloat16);
  SAME(device); SAME(eval_steps); SAME(evals_per_epoch); SAME(early_stopping_patience);
  SAME(early_stopping_threshold); SAME(load_best_model_at_end); SAME(loss_watchdog_threshold); SAME(loss_watchdog_patience); SAME(output_dir); SAME(save_steps); SAME(saves_per_epoch);
  SAME(save_total_limit); SAME(resume_from_checkpoint); SAME(auto_resume_from_checkpoints); SAME(overwrite_output_dir); SAME(save_first_step); SAME(save_only_model); SAME(save_strategy); SAME(eval_strategy);
  SAME(logging_steps); SAME(include_tkps); SAME(use_tensorboard); SAME(gradient_checkpointing); SAME(gradient_checkpointing_offload); SAME(gradient_checkpointing_every_n_layers);
  SAME(attention); SAME(tracks_best_checkpoint); SAME(s2_group_size_ratio); SAME(local_rank); SAME(use_ray); SAME(ray_num_workers); SAME(tokenizer_config);
  SAME(ddp_bucket_cap_mb); SAME(zero_stage); SAME(deepspeed); SAME(deepspeed_stage);
  SAME(adapter); SAME(reinit_weights); SAME(base_model_config); SAME(lora.r); SAME(lora.alpha); SAME(lora.dropout); SAME(lora.target_modules); SAME(lora.target_pattern);
  SAME(lora.target_linear); SAME(lora.use_rslora); SAME(lora.use_dora); SAME(lora.layers); SAME(lora.rank_pattern); SAME(lora.alpha_pattern); SAME(lora.init); SAME(lora.modules_to_save);
  SAME(lora.embed_token_rows); SAME(lora.head_token_rows); SAME(lora.token_rows_listed); SAME(lora_model_dir); SAME(merge_lora);
  SAME(loraplus_lr_ratio); SAME(loraplus_lr_embedding); SAME(rl); SAME(rl_beta); SAME(dpo_label_smoothing); SAME(rpo_alpha);
  SAME(kto_desirable_weight); SAME(kto_undesirable_weight); SAME(simpo_gamma); SAME(cpo_alpha); SAME(dpo_norm_loss); SAME(dpo_use_weighting); SAME(orpo_alpha);
  SAME(dpo_loss_type); SAME(dpo_loss_weights);
  SAME(data.preference_pairs); SAME(data.unpaired_preferences);
  SAME(load_in_4bit); SAME(load_in_8bit); SAME(bnb_4bit_use_double_quant); SAME(fsdp_stage); SAME(offload_params);
#undef SAME
  for (size_t i = 0; i < std::min(a.lr_groups.size(), b.lr_groups.size()); i++) {
    CHECK(a.lr_groups[i].name == b.lr_groups[i].name);
    CHECK(a.lr_groups[i].modules == b.lr_groups[i].modules);
    CHECK(a.lr_groups[i].lr == b.lr_groups[i].lr);
  }
  for (size_t i = 0; i < std::min(a.data.datasets.size(), b.data.datasets.size()); i++) {
    CHECK(a.data.datasets[i].path == b.data.datasets[i].path);
    const DatasetSpec &x = a.data.datasets[i], &y = b.data.datasets[i];
    CHECK(x.type == y.type);
    CHECK(x.split == y.split);
    CHECK(x.field == y.field);
    CHECK(x.chat_template == y.chat_template);
    CHECK(x.chat_template_jinja == y.chat_template_jinja);
    CHECK(x.chat_template_source == y.chat_template_source);
    CHECK(x.eot_tokens == y.eot_tokens);
    CHECK(x.field_messages == y.field_messages);
    CHECK(x.field_tools == y.field_tools);
    CHECK(x.field_chosen == y.field_chosen);
    CHECK(x.field_rejected == y.field_rejected);
    CHECK(x.message_field_training == y.message_field_training);
    CHECK(x.message_field_training_detail == y.message_field_training_detail);
    CHECK(x.drop_system_message == y.drop_system_message);
    CHECK(x.message_property_mappings == y.message_property_mappings);
    CHECK(x.roles == y.roles);
    CHECK(x.roles_to_train == y.roles_to_train);
    CHECK(x.train_on_eos == y.train_on_eos);
    CHECK(x.train_on_eot == y.train_on_eot);
    const UserDefinedFormat &f = x.user_defined, &g = y.user_defined;
    CHECK((f.system_prompt == g.system_prompt && f.field_system == g.field_system &&
           f.field_instruction == g.field_instruction && f.field_input == g.field_input &&
           f.field_output == g.field_output && f.format == g.format && f.no_input_format == g.no_input_format &&
           f.system_format == g.system_format));
    const PreferenceFormat &p = x.preference_format, &q = y.preference_format;
    CHECK((p.field_prompt == q.field_prompt && p.field_system == q.field_system && p.field_chosen == q.field_chosen &&
           p.field_rejected == q.field_rejected && p.field_completion == q.field_completion &&
           p.field_label == q.field_label && p.prompt_format == q.prompt_format && p.chosen_format == q.chosen_format &&
           p.rejected_format == q.rejected_format && p.completion_format == q.completion_format));
  }
}

// The keys whose value some round-tripped config held away from its default: the round-trip
// test checks at the end that every written key of the table was exercised.
std::set<std::string>& keys_round_tripped() {
  static std::set<std::string> keys;
  return keys;
}

void check_round_trip(const TrainConfig& c) {
  const std::string yaml = config_to_yaml(c);
  CAPTURE(yaml);
  TrainConfig back = parse_config(yaml, c.source);
  check_same(c, back);
  CHECK(back.unknown_keys.empty());
  CHECK(config_to_yaml(back) == yaml);
  const TrainConfig defaults;
  for (const ConfigField& field : config_fields()) {
    if (!field.write) continue;
    CHECK_MESSAGE(field.write(back) == field.write(c), field.name);
    if (field.write(c) != field.write(defaults)) keys_round_tripped().insert(field.name);
  }
}


}  // namespace

TEST_CASE("defaults: a config naming only its dataset is TrainConfig's defaults on tiny") {
  TrainConfig c = parse("");
  TrainConfig defaults;
  defaults.source = defaults.data.source = "cfg.yaml";
  defaults.data.datasets = {{scratch().data, "completion"}};
  check_same(c, defaults);
  CHECK(c.unknown_keys.empty());
  CHECK(c.base_model == "tiny");
  CHECK(c.bf16 == "auto");
  CHECK(c.model.num_parameters() == llama_preset("tiny")->num_parameters());
}


TEST_CASE("config_to_yaml round-trips: parse(config_to_yaml(c)) == c") {
  const Scratch& s = scratch();
  const std::string odd = s.write("odd \"name\": #1.txt", "x");
  const std::string datasets =
      "datasets:\n  - path: '" + odd + "'\n    type: alpaca\n  - path: " + s.data + "\n    field: body\n    split: train[:50%]\n"
      "  - path: " + s.data + "\n    type: chat_template\n    chat_template: chatml\n"
      "    field_messages: conversations\n    field_tools: functions\n"
      "    message_field_training: train\n    message_field_training_detail: spans\n    drop_system_message: true\n"
      "    message_property_mappings: {role: from, content: value}\n"
      "    roles: {assistant: [gpt, model], user: human}\n    roles_to_train: [gpt]\n"
      "    train_on_eos: all\n    train_on_eot: last\n"
      "  - path: " + s.data + "\n    type: chat_template\n    chat_template: jinja\n"
      "    chat_template_jinja: '" + s.write("chat #1.jinja", "{{ messages[0].content }}") + "'\n";
  TrainConfig a = parse_config(
      "base_model: llama3-8b\nnum_hidden_layers: 3\nvocab_size: 300\nrope_theta: 123456.7\n"
      "rms_norm_eps: 1.1e-5\ninitializer_range: 0.017\nmax_position_embeddings: 8192\n"
      "tokens: ['<tool #1>', 'a: b']\nresize_token_embeddings_to_32x: true\nmean_resizing_embeddings: true\nshrink_embeddings: true\n"
      "auto_find_batch_size: true\n"
      "rope_scaling: {rope_type: llama3, factor: 7.5, low_freq_factor: 1.5, high_freq_factor: 3.3,"
      " original_max_position_embeddings: 4000}\n" + datasets +
      "dataset_prepared_path: /tmp/prep\nval_set_size: 0.123\nsequence_len: 640\n"
      "use_pose: true\npose_max_context_len: 8192\npose_split_on_token_ids: [128009]\npose_num_chunks: 3\n"
      "micro_batch_size: 3\neval_batch_size: 6\ngradient_accumulation_steps: 5\nnum_epochs: 7\nmax_steps: 99\n"
      "learning_rate: 0.1\nlr_scheduler: linear\nwarmup_steps: 0\ncosine_min_lr_ratio: 0.1\ncosine_constant_lr_ratio: 0.8\n"
      "optimizer: adamw\nadam_beta1: 0.8\nadam_beta2: 0.95\nadam_epsilon: 1e-7\n"
      "weight_decay: 0.3\nembedding_lr_scale: 0.5\nembedding_lr: 1e-5\n"
      "lr_groups: [{name: 'attn #1', modules: [self_attn, 'mlp.up_proj'], lr: 2e-4}, {name: down, modules: [down_proj], lr: 1e-6}]\n"
      "unfrozen_parameters: ['^lm_head.weight$', 'model.layers.[0-9]+.mlp.+']\nmax_grad_norm: 0\nneftune_noise_alpha: 5\nuse_eaft: true\neaft_alpha: 0.5\neaft_k: 8\nspectrum_top_fraction: 0.3\nspectrum_model_name: 'org/model #1'\nseed: 18446744073709551\nbf16: true\ntf32: true\n"
      "device: cpu\nevals_per_epoch: 3\neval_strategy: steps\nsave_strategy: epoch\nearly_stopping_patience: 2\n"
      "early_stopping_threshold: 0.001\nload_best_model_at_end: true\nmetric_for_best_model: eval_loss\nloss_watchdog_threshold: 5.5\nloss_watchdog_patience: 4\n"
      "output_dir: 'out dir: #1'\nsaves_per_epoch: 2\n"
      "save_total_limit: 9\nresume_from_checkpoint: " + s.dir.string() + "\n"
      "auto_resume_from_checkpoints: true\noverwrite_output_dir: true\nsave_first_step: true\nsave_only_model: true\nlogging_steps: 3\ninclude_tkps: false\nuse_tensorboard: true\ngradient_checkpointing: offload\n"
      "gradient_checkpointing_kwargs: {every_n_layers: 3}\ns2_attention: true\n"
      "s2_group_size_ratio: 0.5\nlocal_rank: 1\nuse_ray: true\nray_num_workers: 3\nddp_bucket_cap_mb: 12.5\nzero_stage: 1\n"
      "deepspeed: " + s.write("zero1.json", R"({"zero_optimization": {"stage": 1}})") + "\n",
      "cfg.yaml");
  CHECK(a.data.datasets[0].path == odd);
  CHECK(a.data.datasets[1].field == "body");
  REQUIRE(a.data.datasets.size() == 4);
  CHECK(a.data.datasets[2].roles.at("user") == std::vector<std::string>{"human"});
  CHECK(a.data.datasets[2].message_property_mappings.at("content") == "value");
  CHECK(a.output_dir == "out dir: #1");
  REQUIRE(a.lr_groups.size() == 2);
  CHECK(a.lr_groups[0].modules == std::vector<std::string>{"self_attn", "mlp.up_proj"});
  CHECK(a.lr_groups[1].lr == 1e-6);
  check_round_trip(a);
  fs::create_directories(s.dir / "tokenizer dir: #2");
  const std::string model = s.write("tokenizer dir: #2/tokenizer.model", "x");
  TrainConfig t = parse("tokenizer_config: '" + (s.dir / "tokenizer dir: #2").string() + "'\n");
  CHECK(t.tokenizer_config == model);
  check_round_trip(t);
  check_round_trip(parse("reinit_weights: true\n"));
  // Every RoPE scaling's fields (model/rope_scaling.h), YaRN's optional ones given and not.
  for (const char* rope : {"{rope_type: yarn, factor: 4, original_max_position_embeddings: 512, beta_fast: 16, "
                           "beta_slow: 2, truncate: false, attention_factor: 1.25, mscale: 0.5, mscale_all_dim: 0.75}",
                           "{type: yarn, factor: 2.5}", "{rope_type: dynamic, factor: 3}", "{rope_type: linear, factor: 2}"}) {
    CAPTURE(rope);
    check_round_trip(parse(std::string("rope_scaling: ") + rope + "\n"));
  }
  const RopeConfig yarn = parse("rope_scaling: {rope_type: yarn, factor: 4, beta_slow: 2, truncate: false, mscale: 0.5}\n").model.rope;
  CHECK((yarn.beta_fast == 32.0f && yarn.beta_slow == 2.0f && !yarn.truncate && yarn.mscale == 0.5f && yarn.attention_factor == 0.0f));
  // pretraining_dataset and its keys (each off its default in one of the two).
  const std::string stream = "pretraining_dataset:\n  - path: " + s.data + "\n    text_column: body\n    skip: 2\n"
                             "streaming: true\nmax_steps: 5\nstreaming_multipack_buffer_size: 7\n";
  check_round_trip(parse(stream + "sample_packing: true\nflash_attention: true\npretraining_sample_concatenation: true\n"));
  check_round_trip(parse(stream + "pretrain_multipack_attn: false\ndataloader_num_workers: 2\ndataloader_pin_memory: false\n"
                               "dataloader_prefetch_factor: 4\ntest_datasets:\n  - path: " + s.data + "\neval_sequence_len: 64\n"));
  check_round_trip(parse("optimizer: ademamix_8bit\noptim_args: 'beta3=0.999,alpha=8,t_alpha=100'\n"));
  check_round_trip(parse("optimizer: galore_adamw\noptim_target_modules: [attn, 'mlp\\.(up|down)_proj']\n"
                         "optim_args: rank=8,proj_type=left\n"));
  check_round_trip(parse("optimizer: galore_adamw_8bit\noptim_target_modules: all_linear\n"));
  check_round_trip(parse("optimizer: apollo_adamw_layerwise\noptim_target_modules: [attn]\ngradient_accumulation_steps: 1\n"
                         "optim_args: {rank: 1, proj: svd, scale_type: tensor, scale: 128}\n"));
  check_round_trip(parse("optimizer: q_galore_adamw8bit\noptim_target_modules: [attn]\nqgalore_rank: 8\n"
                         "qgalore_update_proj_gap: 10\nqgalore_scale: 0.5\nqgalore_proj_type: std\nqgalore_proj_quant: false\n"
                         "qgalore_proj_bits: 2\nqgalore_proj_group_size: 64\nqgalore_cos_threshold: -0.5\n"
                         "qgalore_gamma_proj: 3\nqgalore_queue_size: 4\noptim_args: {min_8bit_size: 100}\n"));
  check_round_trip(parse("optimizer: came_pytorch\nadam_beta3: 0.999\nadam_epsilon2: 1e-12\n"
                         "optim_args: {clip_threshold: 0.5}\n"));
  const TrainConfig pure_bf16 = parse("bfloat16: true\n");
  CHECK(pure_bf16.bfloat16);
  check_round_trip(pure_bf16);
  const TrainConfig full = parse("bf16: full\n");  // Axolotl's bf16 model without autocast
  CHECK((full.bfloat16 && full.bf16 == "true"));
  check_round_trip(full);
  const TrainConfig lora_full = parse("bf16: full\nadapter: lora\nlora_target_linear: true\n");
  CHECK((!lora_full.bfloat16 && lora_full.bf16 == "true"));  // f32 adapters over a bf16 base
  check_round_trip(lora_full);
  const TrainConfig dft = parse("use_dft: true\n");
  CHECK(dft.use_dft);
  check_round_trip(dft);
  fs::create_directories(s.dir / "model dir: #4");  // base_model_config: a directory with config.json
  LlamaConfig shape = *llama_preset("tiny");
  shape.num_hidden_layers = 3;
  s.write("model dir: #4/config.json", hf_config_json(shape, DType::f32, {256, 257}));
  const TrainConfig other_shape = parse("base_model_config: '" + (s.dir / "model dir: #4").string() + "'\n");
  CHECK(other_shape.model.num_hidden_layers == 3);
  check_round_trip(other_shape);
  TrainConfig b = parse(
      "base_model: llama3-1b\nrope_scaling: null\ntie_word_embeddings: false\nwarmup_ratio: 0.3\n"
      "eval_steps: 7\nsave_steps: 14\nsample_packing: true\nflash_attention: true\n"
      "learning_rate: 3e-4\nbf16: false\ntrain_on_inputs: true\nexcess_length_strategy: truncate\nmin_sample_len: 4\n"
      "eval_sample_packing: false\npad_to_sequence_len: true\nchat_template: jinja\n"
      "chat_template_jinja: \"{% for m in messages %}[{{ m.role }}]: {{ m.content }}\\n{% endfor %}\"\n"
      "chat_template_kwargs: {date_string: 26 Jul 2024, thinking: false, depth: 2, ratio: 0.5, quoted: '7', none: ~, list: [1, b]}\n"
      "eot_tokens: ['<|eot_id|>', '<|im_end|>']\n"
      "curriculum_sampling: true\nshuffle_merged_datasets: false\ndataset_exact_deduplication: true\n"
      "shuffle_before_merging_datasets: true\ndataset_shard_num: 4\ndataset_shard_idx: 3\n"
      "sample_packing_sequentially: true\ngroup_by_length: true\ndataloader_drop_last: true\n"
      "sample_packing_bin_size: 64\nsample_packing_group_size: 5000\nmultipack_real_batches: true\n"
      "lr_quadratic_warmup: true\nlr_scheduler_kwargs: {num_cycles: 1.5}\n"
      "special_tokens: {pad_token: '<|end_of_text|>', eos_token: '<|eot_id|>'}\n"
      "added_tokens_overrides: {128011: '<|im_start|>', 128012: \"<|im_end|> #2\"}\n");
  CHECK(b.data.curriculum_sampling);
  CHECK(!b.data.shuffle_merged_datasets);
  CHECK(b.data.shuffle_before_merging_datasets);
  CHECK(b.data.shard_num == 4);
  CHECK(b.data.shard_idx == 3);
  CHECK(b.data.exact_deduplication);
  CHECK(b.data.sample_packing_sequentially);
  CHECK(b.data.sample_packing_bin_size == 64);
  CHECK(b.data.sample_packing_group_size == 5000);
  CHECK(b.data.multipack_real_batches);
  CHECK(!parse("sample_packing: true\nflash_attention: true\n").data.multipack_real_batches);  // Axolotl's default
  CHECK(parse("sample_packing: true\nsdp_attention: true\n").data.multipack_real_batches);
  CHECK(!parse("sample_packing: true\nsdp_attention: true\nmultipack_real_batches: false\n").data.multipack_real_batches);
  // Axolotl's validator pads packed rows to their bin unless told not to.
  CHECK(parse("sample_packing: true\nflash_attention: true\n").data.pad_to_sequence_len);
  CHECK(!parse("sample_packing: true\nflash_attention: true\npad_to_sequence_len: false\n").data.pad_to_sequence_len);
  CHECK(!parse("").data.pad_to_sequence_len);
  CHECK(b.data.group_by_length);
  CHECK(b.data.dataloader_drop_last == true);
  // Unset, Axolotl drops the eval loader's last batch with packed training and unpacked eval only.
  CHECK(!parse("").data.dataloader_drop_last.has_value());
  CHECK(parse("sample_packing: true\nflash_attention: true\neval_sample_packing: false\n").data.drops_last_eval_rows());
  CHECK(!parse("sample_packing: true\nflash_attention: true\neval_sample_packing: false\ndataloader_drop_last: false\n").data.drops_last_eval_rows());
  CHECK(!parse("").data.drops_last_eval_rows());
  CHECK(parse("sample_packing: true\nflash_attention: true\n").data.drops_last_eval_rows());  // the eval multipack sampler's
  // Axolotl's quadratic-warmup cosine is its own, built without lr_scheduler_kwargs: unused.
  CHECK(b.lr_scheduler_kwargs.num_cycles == -1);
  CHECK(std::count_if(b.adjustments.begin(), b.adjustments.end(), [](const std::string& a) {
          return a.rfind("lr_scheduler_kwargs: unused with lr_scheduler cosine and lr_quadratic_warmup", 0) == 0;
        }) == 1);
  check_round_trip(b);
  CHECK(parse("lr_scheduler: cosine\nlr_scheduler_kwargs: {num_cycles: 1.5}\n").lr_scheduler_kwargs.num_cycles == 1.5);
  const TrainConfig wsd = parse("lr_scheduler: warmup_stable_decay\nlr_scheduler_kwargs: {num_decay_steps: 7, "
                                "num_stable_steps: 3, min_lr_ratio: 0.1, warmup_type: 1-sqrt, decay_type: cosine, num_cycles: 0.25}\n");
  CHECK(wsd.lr_scheduler_kwargs.warmup_type == "1-sqrt");
  CHECK(wsd.lr_scheduler_kwargs.num_decay_steps == 7);
  check_round_trip(wsd);
  check_round_trip(parse("lr_scheduler: cosine_warmup_with_min_lr\nlr_scheduler_kwargs: {min_lr_rate: 0.1, warmup_lr_rate: 0.2}\n"));
  check_round_trip(parse("lr_scheduler: one_cycle\nlr_scheduler_kwargs: {pct_start: 0.25, anneal_strategy: linear, "
                         "three_phase: true, cycle_momentum: false, div_factor: 10, final_div_factor: 100, "
                         "base_momentum: 0.8, max_momentum: 0.9}\n"));
  check_round_trip(parse("lr_scheduler: reduce_lr_on_plateau\nlr_scheduler_kwargs: {mode: max, factor: 0.5, patience: 2, "
                         "threshold: 0.01, threshold_mode: abs, cooldown: 1, min_lr: 1e-6, eps: 1e-9}\n"));
  check_round_trip(parse("fix_untrained_tokens: [128011, 128012]\n"));
  check_round_trip(parse("fix_untrained_tokens: true\n"));
  check_round_trip(parse("average_tokens_across_devices: true\n"));
  fs::create_directories(s.dir / "adapter dir: #3");
  s.write("adapter dir: #3/adapter_config.json", "{}");
  TrainConfig l = parse(
      "adapter: lora\nlora_r: 16\nlora_alpha: 32\nlora_dropout: 0.05\npeft_use_rslora: true\npeft_use_dora: true\npeft_layers_to_transform: [0, 2]\n"
      "lora_target_modules: [q_proj, v_proj]\nlora_target_linear: true\n"
      "peft_init_lora_weights: gaussian\npeft_autocast_adapter_dtype: true\npeft_layers_pattern: [layers]\n"
      "lora_rank_pattern: {'layers\\.1\\..*': 4, q_proj: 32}\nlora_alpha_pattern: {\"model.layers.0.mlp.(up|down)_proj\": 2.5}\n"
      "lora_modules_to_save: [embed_tokens, lm_head]\npeft_ensure_weight_tying: true\nmerge_lora: true\n"
      "loraplus_lr_ratio: 16\nloraplus_lr_embedding: 1e-5\n"
      "lora_model_dir: '" + (s.dir / "adapter dir: #3").string() + "'\n");
  CHECK(l.lora.target_modules == std::vector<std::string>{"q_proj", "v_proj"});
  CHECK(l.lora.targets().size() == 7);
  CHECK(l.lora.use_dora);
  CHECK(l.lora.rank_pattern == std::vector<std::pair<std::string, int64_t>>{{"layers\\.1\\..*", 4}, {"q_proj", 32}});
  CHECK(l.lora.alpha_pattern == std::vector<std::pair<std::string, float>>{{"model.layers.0.mlp.(up|down)_proj", 2.5f}});
  CHECK(l.loraplus_lr_ratio == 16);
  CHECK(l.loraplus_lr_embedding == 1e-5);
  check_round_trip(l);
  check_round_trip(parse("adapter: lora\nlora_target_linear: true\nrelora: true\nrelora_prune_method: reset\n"
                         "relora_prune_ratio: 0.5\njagged_restart_steps: 50\njagged_restart_warmup_steps: 5\n"
                         "jagged_restart_anneal_steps: 3\n"));
  TrainConfig q = parse("adapter: qlora\nload_in_4bit: true\nlora_target_linear: true\n"
                        "bnb_config_kwargs: {bnb_4bit_quant_type: nf4, bnb_4bit_use_double_quant: false}\n"
                        "zero_stage: 3\nfsdp_config: {fsdp_offload_params: true}\n");
  CHECK(q.load_in_4bit);
  CHECK(!q.bnb_4bit_use_double_quant);
  CHECK(q.offload_params);
  check_round_trip(q);
  TrainConfig p = parse("zero_stage: 3\nfsdp_config: {fsdp_forward_prefetch: false, backward_prefetch: NO_PREFETCH}\n");
  CHECK(!p.forward_prefetch);
  CHECK(!p.backward_prefetch);
  check_round_trip(p);
  TrainConfig q8 = parse("adapter: lora\nload_in_8bit: true\nlora_target_linear: true\nmerge_lora: true\n");
  CHECK(q8.load_in_8bit);
  CHECK(q8.quantized_base());
  check_round_trip(q8);
  const TrainConfig with_test = parse("val_set_size: 0\ntest_datasets: [{path: " + scratch().data + ", type: completion}]\n");
  CHECK(with_test.data.test_datasets.size() == 1);
  check_round_trip(with_test);
  const std::string pairs = "datasets:\n  - path: " + scratch().data + "\n    type: chat_template.default\n"
                            "    chat_template: chatml\n    field_messages: conversation\n"
                            "    field_chosen: good\n    field_rejected: bad\n";
  const TrainConfig dpo = parse_config(pairs + "rl: dpo\nrl_beta: 0.3\ndpo_label_smoothing: 0.05\nrpo_alpha: 0.25\ndpo_norm_loss: true\n"
                                       "dpo_loss_type: [sigmoid, sft]\ndpo_loss_weights: [1, 0.25]\n", "cfg.yaml");
  CHECK(dpo.data.preference_pairs);
  CHECK(dpo.attention == AttentionKind::flash);
  check_round_trip(dpo);
  check_round_trip(parse_config(pairs + "rl: ipo\nflash_attention: true\ndpo_use_weighting: true\n", "cfg.yaml"));
  check_round_trip(parse_config("datasets:\n  - path: " + scratch().data +
                                    "\n    type: {field_instruction: q, format: \"[INST] {instruction}: {input}\", "
                                    "system_prompt: 'Be brief: {{x}}'}\n",
                                "cfg.yaml"));
  // rl's user-defined rows and passthrough (an entry without a type) round-trip under their full names.
  const TrainConfig formatted = parse_config(
      "datasets:\n  - path: " + scratch().data + "\n    type: {field_prompt: q, prompt_format: '[{system}] {prompt}: ',"
      " chosen_format: '{chosen}!', field_label: ok}\n  - path: " + scratch().data + "\nrl: dpo\n", "cfg.yaml");
  CHECK(formatted.data.datasets.at(0).type == "user_defined.default");
  CHECK(formatted.data.datasets.at(1).type == "passthrough.default");
  check_round_trip(formatted);
  check_round_trip(parse_config(pairs + "rl: simpo\nrl_beta: 2.5\nsimpo_gamma: 1.2\ncpo_alpha: 0\n", "cfg.yaml"));
  const TrainConfig orpo = parse_config("datasets:\n  - path: " + scratch().data + "\n    type: chat_template.argilla\n"
                                        "rl: orpo\norpo_alpha: 0.2\n", "cfg.yaml");
  CHECK(orpo.rl_beta == 0.2);
  check_round_trip(orpo);
  const TrainConfig kto = parse_config("datasets:\n  - path: " + scratch().data + "\n    type: llama3.ultra\n"
                                       "rl: kto\nmicro_batch_size: 2\nkto_desirable_weight: 0.2\nkto_undesirable_weight: 1.5\n",
                                       "cfg.yaml");
  CHECK(kto.data.unpaired_preferences);
  check_round_trip(kto);
  // A reward model: a classifier of one label, untied, on pairs.
  const TrainConfig reward = parse_config("datasets:\n  - path: " + scratch().data + "\n    type: bradley_terry.chat_template\n"
                                          "reward_model: true\nmodel_type: AutoModelForSequenceClassification\nnum_labels: 1\n",
                                          "cfg.yaml");
  CHECK(reward.model.num_labels == 1);
  CHECK(!reward.model.tie_word_embeddings);
  CHECK(reward.data.preference_pairs);
  check_round_trip(reward);
  // A process reward model: a token classifier of two labels on unshifted token labels.
  const TrainConfig prm = parse_config("datasets:\n  - path: " + scratch().data + "\n    type: stepwise_supervised\n"
                                       "process_reward_model: true\nnum_labels: 2\n", "cfg.yaml");
  CHECK(prm.model.num_labels == 2);
  CHECK(prm.model.token_classification);
  CHECK(prm.data.token_labels);
  CHECK(!prm.data.preference_pairs);
  check_round_trip(prm);
  check_round_trip(parse(""));
  check_round_trip(parse("xformers_attention: true\n"));
  check_round_trip(parse("attn_implementation: sdpa\n"));
  check_round_trip(parse("qat: {activation_dtype: int8, weight_dtype: int4, group_size: 16, fake_quant_after_n_steps: 7}\n"));
  check_round_trip(parse("qat: {weight_dtype: int4, group_size: 16}\n"));
  check_round_trip(parse("qat: {activation_dtype: fp8, weight_dtype: int4, group_size: 16}\n"));
  check_round_trip(parse("qat: {activation_dtype: float8, weight_dtype: float8_e4m3fn}\n"));
  check_round_trip(parse("lisa_n_layers: 1\nlisa_step_interval: 20\nlisa_layers_attribute: model.layers\n"));
  check_round_trip(parse("fp8: true\nfp8_enable_fsdp_float8_all_gather: true\n"));
  const std::string lora = "adapter: lora\nlora_target_linear: true\n";
  check_round_trip(parse(lora + "tie_word_embeddings: false\npeft_trainable_token_indices: {embed_tokens: [3, 1], lm_head: [2]}\n"));
  check_round_trip(parse(lora + "peft_trainable_token_indices: [4]\n"));
  check_round_trip(parse(lora + "peft_layer_replication: [[0, 2], [1, 2]]\n"));
  check_round_trip(parse("scaling_softmax: true\nscaling_softmax_factor: 0.6\nscaling_softmax_bias: -0.25\n"));
  check_round_trip(parse("llmcompressor:\n  recipe:\n    stage_1:\n      run_type: train\n      pruning_modifiers:\n"
                         "        ConstantPruningModifier: {targets: ['re:.*up_proj.weight', lm_head.weight], start: -1}\n"
                         "  save_compressed: true\n"));
  // HF's pad_token_id, from model_config (its generation ids beside it are nothing to train).
  const TrainConfig padded = parse("model_config:\n  pad_token_id: 5\n  bos_token_id: 1\n  eos_token_id: 2\n");
  CHECK(padded.model.pad_token_id == 5);
  check_round_trip(padded);
  CHECK_THROWS_WITH_AS(parse("pad_token_id: 300\n"), doctest::Contains("pad_token_id must be below vocab_size"), UserError);
  check_round_trip(parse("plugins: [axolotl.integrations.diffusion.DiffusionPlugin]\ndiffusion:\n  eps: 0.01\n"
                         "  importance_weighting: false\n  mask_token_id: 7\n  mask_token_str: '<m>'\n"));
  // The form test_train edits in a saved config.
  const std::string small = config_to_yaml(parse("hidden_size: 32\nnum_attention_heads: 4\n"));
  CHECK(small.find("\nhidden_size: 32\n") != std::string::npos);
  CHECK(small.find("\n# Model\nbase_model: tiny\n") != std::string::npos);
  // Every key the table writes was round-tripped away from its default by one config above.
  for (const ConfigField& field : config_fields())
    if (field.write) CHECK_MESSAGE(keys_round_tripped().count(field.name), field.name);
}

TEST_CASE("configs/tiny.yaml, the embedded default, loads as written") {
  const std::string path =
      (fs::path(__FILE__).parent_path() / ".." / "configs" / "tiny.yaml").string();
  Overrides overrides;  // without Debian's fortunes installed, still check every other key
  if (!fs::exists("/usr/share/games/fortunes/"))
    overrides["datasets"] = "[{path: " + scratch().data + "}]";
  TrainConfig c = load_config(path, overrides);
  CHECK(c.unknown_keys.empty());
  CHECK(c.base_model == "tiny");
  REQUIRE(c.data.datasets.size() == 1);
  if (overrides.empty()) CHECK(c.data.datasets[0].path == "/usr/share/games/fortunes/");
  CHECK(c.data.datasets[0].type == "completion");
  CHECK(c.data.sequence_len == 256);
  CHECK(c.micro_batch_size == 8);
  CHECK(c.gradient_accumulation_steps == 1);
  CHECK(c.max_steps == 200);
  CHECK(c.learning_rate == 1e-3);
  CHECK(c.lr_scheduler == "cosine");
  CHECK(c.warmup_steps == 20);
  CHECK(c.optimizer == "adamw_torch");
  CHECK(c.weight_decay == 0.1);
  CHECK(c.max_grad_norm == 1.0);
  CHECK(c.data.val_set_size == 0.02);
  CHECK(c.eval_steps == 50);
  CHECK(c.save_steps == 100);
  CHECK(c.save_total_limit == 2);
  CHECK(c.logging_steps == 10);
  CHECK(c.output_dir == "./out/tiny");
  CHECK(c.seed == 42);
  CHECK(c.bf16 == "auto");
  CHECK(!c.gradient_checkpointing);
  check_round_trip(c);
}

TEST_CASE("configs/llama3.yaml, the 8-GPU Llama-3-8B example, loads as written") {
  const std::string path =
      (fs::path(__FILE__).parent_path() / ".." / "configs" / "llama3.yaml").string();
  TrainConfig c = load_config(path);
  CHECK(c.base_model == "llama3-8b");
  CHECK(c.model.num_parameters() == 8030261248);
  CHECK(c.data.sequence_len == 8192);
  CHECK(c.attention == AttentionKind::flash);
  CHECK(c.gradient_checkpointing);
  CHECK(c.zero_stage == 3);
  // It fits 8 x 80 GB by the planner with 70% to spare (bf16 on the GPUs: 23.6 GiB, its units
  // gathered in bf16; 27.8 with f32 compute copies cast per use).
  CHECK(plan_memory(memory_plan_input(c, 8, true)).peak_bytes <= 0.3 * 80 * 1073741824.0);
  CHECK(c.bf16 == "auto");
  CHECK(c.early_stopping_patience == 3);
  REQUIRE(c.data.datasets.size() == 1);
  CHECK(c.data.datasets[0].type == "alpaca");
  CHECK(fs::exists(c.data.datasets[0].path));  // resolved relative to the config file
  CHECK(c.unknown_keys == std::vector<std::string>{"wandb_project"});
  CHECK(c.adapter.empty());
}


TEST_CASE("config_keys lists the field table: name, type, default, meaning") {
  const std::vector<ConfigKey> keys = config_keys();
  REQUIRE(keys.size() == config_fields().size());
  // The hub revision rows come first (base_model resolves at that revision) and are never written:
  // base_model is the first key a config is written with.
  CHECK(keys[0].name == "revision_of_model");
  CHECK(keys[1].name == "model_revision");
  CHECK(keys[2].name == "base_model");
  CHECK(keys[2].default_value == "tiny");
  CHECK(!config_fields()[0].write);
  CHECK(!config_fields()[1].write);
  std::set<std::string> names;
  for (const ConfigKey& key : keys) {
    CAPTURE(key.name);
    CHECK(names.insert(key.name).second);  // no key twice
    CHECK(!key.type.empty());
    CHECK(!key.meaning.empty());
    CHECK(!key.default_value.empty());
    CHECK(key.meaning.find('\n') == std::string::npos);
  }
  auto find = [&](const std::string& name) {
    for (const ConfigKey& key : keys)
      if (key.name == name) return key;
    FAIL("no key " << name);
    return ConfigKey{};
  };
  CHECK(find("hidden_size").type == "an integer in [1, 1048576]");
  CHECK(find("hidden_size").default_value == "256");
  CHECK(find("max_steps").default_value == "unset");
  CHECK(find("learning_rate").default_value == "0.0003");
  CHECK(find("lr_scheduler").type ==
        "one of cosine, linear, constant, constant_with_warmup, polynomial, inverse_sqrt, cosine_with_restarts, "
        "cosine_with_min_lr, cosine_warmup_with_min_lr, warmup_stable_decay, rex, one_cycle, reduce_lr_on_plateau");
  CHECK(find("flash_attention").default_value == "false");
}

TEST_CASE("README.md's Config keys table names every key of the field table") {
  std::ifstream in(fs::path(__FILE__).parent_path() / ".." / "README.md");
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  const std::string readme = text.str();
  const size_t begin = readme.find("\n## Config keys\n");
  REQUIRE(begin != std::string::npos);
  const std::string section = readme.substr(begin, readme.find("\n## ", begin + 1) - begin);
  for (const ConfigKey& key : config_keys()) {
    CAPTURE(key.name);
    CHECK(section.find("`" + key.name + "`") != std::string::npos);
  }
}
