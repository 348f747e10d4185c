// Tests for the config keys of the low-rank projection optimizers (GaLore, its layer-wise form,
// APOLLO, Q-GaLore): which weights optim_target_modules picks as transformers matches them, their
// optim_args and Adam keys, and what each refuses.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "test/config_fixture.h"
#include "train/optimizer_groups.h"

using namespace llm;
using namespace llm::config_test;

TEST_CASE("optimizer: galore_*: optim_target_modules as transformers matches them, optim_args, what it refuses") {
  const TrainConfig c = parse("optimizer: galore_adamw\noptim_target_modules: [self_attn, 'model\\.layers\\.1\\.mlp\\.up_proj']\n"
                              "optim_args: rank=4,update_proj_gap=10,scale=0.5,proj_type=reverse_std\n");
  CHECK(c.optimizer_galore());
  CHECK_FALSE(c.optimizer_adamw());
  // A linear whose module name holds an entry, or matches one whole; never a norm or the embedding.
  CHECK(low_rank_target(c, "model.layers.0.self_attn.q_proj.weight"));
  CHECK(low_rank_target(c, "model.layers.1.mlp.up_proj.weight"));
  CHECK_FALSE(low_rank_target(c, "model.layers.0.mlp.up_proj.weight"));
  CHECK_FALSE(low_rank_target(c, "model.layers.0.input_layernorm.weight"));
  CHECK_FALSE(low_rank_target(parse("optimizer: galore_adamw\noptim_target_modules: [embed]\n"), "model.embed_tokens.weight"));
  const TrainConfig all = parse("optimizer: galore_adamw_8bit\noptim_target_modules: all_linear\n");
  CHECK(low_rank_target(all, "lm_head.weight"));
  CHECK(low_rank_target(all, "model.layers.1.mlp.down_proj.weight"));
  CHECK_FALSE(low_rank_target(all, "model.norm.weight"));
  CHECK(c.optim_arg("rank", 0) == 4);
  CHECK(c.optim_arg("update_proj_gap", 0) == 10);
  CHECK(c.optim_arg("scale", 0) == 0.5);
  CHECK(c.optim_arg("proj_type", -1) == 1);
  // The saved config reads back the same.
  const TrainConfig again = parse(config_to_yaml(c));
  CHECK(again.optim_target_modules == c.optim_target_modules);
  CHECK(again.optim_arg("proj_type", -1) == 1);
  CHECK(parse(config_to_yaml(all)).optim_target_all_linear);
  // transformers hands GaLore's classes the learning rate alone: the Adam keys and weight_decay go unused.
  CHECK(parse("optimizer: galore_adamw\noptim_target_modules: [attn]\nweight_decay: 0.1\nadam_beta2: 0.99\n"
              "optim_args: rank=4,beta=2\n")
            .unknown_keys == std::vector<std::string>{"adam_beta2", "optim_args.beta", "weight_decay"});
  CHECK(parse("optim_target_modules: [attn]\n").unknown_keys == std::vector<std::string>{"optim_target_modules"});
  CHECK(error_with("optimizer: galore_adamw\n") ==
        "cfg.yaml:3: optimizer: expected optim_target_modules with galore_adamw (the linear modules GaLore projects, "
        "or all_linear; transformers raises without), got none");
  CHECK(error_with("optimizer: galore_adamw\noptim_target_modules: attn\n") ==
        "cfg.yaml:4: optim_target_modules: expected a list of module names or regular expressions, or all_linear, got 'attn'");
  CHECK(starts_with(error_with("optimizer: galore_adamw\noptim_target_modules: ['(']\n"),
                    "cfg.yaml:4: optim_target_modules[0]: expected a module name or a valid regular expression"));
  CHECK(starts_with(error_with("optimizer: galore_adamw\noptim_target_modules: [attn]\noptim_args: proj_type=full\n"),
                    "cfg.yaml:5: optim_args.proj_type: expected one of std, reverse_std, right, left"));
  CHECK(starts_with(error_with("optimizer: galore_adamw\noptim_target_modules: [attn]\noptim_args: rank=0\n"),
                    "cfg.yaml:5: optim_args: expected rank of at least 1"));
  CHECK(starts_with(error_with("optimizer: galore_adamw\noptim_target_modules: [attn]\nlr_groups:\n  - name: a\n"
                               "    modules: [q_proj]\n    lr: 0.1\n"),
                    "cfg.yaml:5: lr_groups: expected no lr_groups with optimizer: galore_adamw"));
  CHECK(starts_with(error_with("optimizer: galore_adamw\noptim_target_modules: [attn]\nadapter: lora\nlora_target_linear: true\n"),
                    "cfg.yaml:5: adapter: expected no adapter with galore_adamw"));
  CHECK(starts_with(error_with("optimizer: galore_adafactor\noptim_target_modules: [attn]\nlr_scheduler: one_cycle\n"),
                    "cfg.yaml:5: lr_scheduler: expected lr_scheduler_kwargs cycle_momentum: false with one_cycle and "
                    "galore_adafactor"));
  CHECK(parse("optimizer: galore_adamw\noptim_target_modules: [attn]\nlr_scheduler: one_cycle\n").optimizer_galore());
  CHECK(starts_with(error_with("optimizer: galore_adamw_8bit\noptim_target_modules: [attn]\nzero_stage: 1\n"),
                    "cfg.yaml:3: optimizer: expected an optimizer ZeRO stage 1 shards"));
}

TEST_CASE("optimizer: galore_*_layerwise: GaLore stepped in backward; what transformers' layer-wise build refuses") {
  const std::string galore = "optim_target_modules: [attn]\ngradient_accumulation_steps: 1\n";
  const TrainConfig c = parse("optimizer: galore_adamw_8bit_layerwise\n" + galore + "max_grad_norm: 0.5\n");
  CHECK(c.optimizer_galore());
  CHECK(c.optimizer_layerwise());
  CHECK(c.optimizer_per_parameter() == "galore_adamw_8bit");
  CHECK_FALSE(parse("optimizer: galore_adamw\n" + galore).optimizer_layerwise());
  // Nothing is left to clip once each gradient has made its update.
  CHECK(c.unknown_keys == std::vector<std::string>{"max_grad_norm"});
  CHECK(parse(config_to_yaml(c)).optimizer == "galore_adamw_8bit_layerwise");
  CHECK(starts_with(error_with("optimizer: galore_adafactor_layerwise\n" + galore),
                    "cfg.yaml:3: optimizer: expected galore_adamw_layerwise, galore_adamw_8bit_layerwise or "
                    "galore_adafactor (transformers builds galore_adafactor_layerwise's Adafactors before it turns "
                    "relative_step off"));
  CHECK(error_with("optimizer: galore_adamw_layerwise\noptim_target_modules: [attn]\ngradient_accumulation_steps: 4\n") ==
        "cfg.yaml:5: gradient_accumulation_steps: expected gradient_accumulation_steps 1 with galore_adamw_layerwise "
        "(each update runs as its gradient completes in backward; transformers raises too), got 4");
  CHECK(starts_with(error_with("optimizer: galore_adamw_layerwise\noptim_target_modules: [attn]\nbatch_size: 8\n"
                               "micro_batch_size: 4\n"),
                    "cfg.yaml:5: batch_size: expected gradient_accumulation_steps 1"));
  for (const char* schedule : {"lr_scheduler: rex\n", "lr_scheduler: one_cycle\n", "cosine_min_lr_ratio: 0.1\n",
                              "lr_quadratic_warmup: true\n", "jagged_restart_steps: 4\n"}) {
    CAPTURE(schedule);
    CHECK(error_with("optimizer: galore_adamw_layerwise\n" + galore + schedule)
              .find("expected one of transformers' schedules with galore_adamw_layerwise (Axolotl builds this one "
                    "over the Trainer's stand-in optimizer") != std::string::npos);
  }
  CHECK(starts_with(error_with("optimizer: galore_adamw_layerwise\n" + galore + "lr_scheduler: reduce_lr_on_plateau\n"),
                    "cfg.yaml:6: lr_scheduler: expected one of transformers' other schedules with galore_adamw_layerwise"));
  CHECK(starts_with(error_with("optimizer: galore_adamw_layerwise\n" + galore + "lisa_n_layers: 1\nlisa_step_interval: 2\n"),
                    "cfg.yaml:6: lisa_n_layers: expected no LISA with galore_adamw_layerwise"));
  CHECK(parse("optimizer: galore_adamw_layerwise\n" + galore + "lr_scheduler: cosine_with_min_lr\n"
              "lr_scheduler_kwargs: {min_lr_rate: 0.1}\n").optimizer_layerwise());
}

TEST_CASE("optimizer: apollo_*: optim_args, the Adam keys its targets take, what it refuses") {
  const std::string targets = "optim_target_modules: [attn]\n";
  const TrainConfig c = parse("optimizer: apollo_adamw\n" + targets +
                              "optim_args: rank=1,proj=svd,scale_type=tensor,update_proj_gap=50,scale=128,proj_type=left\n");
  CHECK(c.optimizer_apollo());
  CHECK(c.optimizer_low_rank());
  CHECK_FALSE(c.optimizer_galore());
  CHECK_FALSE(c.optimizer_adamw());
  CHECK(c.optim_arg("rank", 0) == 1);
  CHECK(c.optim_arg("proj", -1) == 1);
  CHECK(c.optim_arg("scale_type", -1) == 1);
  CHECK(c.optim_arg("update_proj_gap", 0) == 50);
  CHECK(c.optim_arg("scale", 0) == 128);
  CHECK(c.optim_arg("proj_type", -1) == 3);
  const TrainConfig again = parse(config_to_yaml(c));
  CHECK(again.optim_args == c.optim_args);
  CHECK(again.unknown_keys.empty());
  // transformers hands APOLLO's targets the Trainer's betas and eps, and no group a weight decay.
  CHECK(parse("optimizer: apollo_adamw\n" + targets + "weight_decay: 0.1\nadam_beta2: 0.99\nadam_epsilon: 1e-6\n"
              "optim_args: rank=4,beta=2\n")
            .unknown_keys == std::vector<std::string>{"optim_args.beta", "weight_decay"});
  CHECK(parse(config_to_yaml(parse("optimizer: apollo_adamw\n" + targets + "adam_beta2: 0.99\n"))).adam_beta2 == 0.99);
  CHECK(error_with("optimizer: apollo_adamw\n") ==
        "cfg.yaml:3: optimizer: expected optim_target_modules with apollo_adamw (the linear modules APOLLO projects, "
        "or all_linear; transformers raises without), got none");
  CHECK(error_with("optimizer: apollo_adamw\n" + targets + "optim_args: proj=gaussian\n") ==
        "cfg.yaml:5: optim_args.proj: expected one of random, svd, got gaussian");
  CHECK(error_with("optimizer: apollo_adamw\n" + targets + "optim_args: scale_type=row\n") ==
        "cfg.yaml:5: optim_args.scale_type: expected one of channel, tensor, got row");
  CHECK(starts_with(error_with("optimizer: apollo_adamw\n" + targets + "optim_args: scale=-1\n"),
                    "cfg.yaml:5: optim_args.scale: expected"));
  CHECK(starts_with(error_with("optimizer: apollo_adamw\n" + targets + "optim_args: update_proj_gap=0\n"),
                    "cfg.yaml:5: optim_args: expected update_proj_gap of at least 1 (APOLLO's)"));
  CHECK(starts_with(error_with("optimizer: apollo_adamw\n" + targets + "adapter: lora\nlora_target_linear: true\n"),
                    "cfg.yaml:5: adapter: expected no adapter with apollo_adamw (APOLLO projects"));
  CHECK(starts_with(error_with("optimizer: apollo_adamw\n" + targets + "embedding_lr_scale: 0.5\n"),
                    "cfg.yaml:5: embedding_lr_scale: expected no embedding_lr_scale with optimizer: apollo_adamw "
                    "(transformers' APOLLO groups replace the Trainer's)"));
  CHECK(starts_with(error_with("optimizer: apollo_adamw\n" + targets + "zero_stage: 1\n"),
                    "cfg.yaml:3: optimizer: expected an optimizer ZeRO stage 1 shards"));
  // Known from the model's shapes: channel factors (one a row of R for a square q_proj, r of them
  // from the left) that cannot scale its gradient.
  CHECK(error_with("optimizer: apollo_adamw\n" + targets + "optim_args: rank=4,proj_type=left\n") ==
        "cfg.yaml:5: optim_args: expected proj_type std or scale_type tensor (channel factors, one a row or column "
        "of the low-rank gradient, do not fit model.layers.0.self_attn.q_proj.weight [256, 256]; apollo_torch's "
        "broadcast fails), got {proj_type: left, rank: 4}");
  CHECK(parse("optimizer: apollo_adamw\n" + targets + "optim_args: rank=1,proj_type=left\n").optimizer_apollo());
  const TrainConfig layerwise = parse("optimizer: apollo_adamw_layerwise\n" + targets + "gradient_accumulation_steps: 1\n");
  CHECK(layerwise.optimizer_apollo());
  CHECK(layerwise.optimizer_layerwise());
  CHECK(starts_with(error_with("optimizer: apollo_adamw_layerwise\n" + targets + "gradient_accumulation_steps: 2\n"),
                    "cfg.yaml:5: gradient_accumulation_steps: expected gradient_accumulation_steps 1 with "
                    "apollo_adamw_layerwise"));
}

TEST_CASE("optimizer: q_galore_adamw8bit: Axolotl's qgalore_* keys and targets, its Adam keys, what it refuses") {
  const std::string targets = "optim_target_modules: [q_proj, embed]\n";
  const TrainConfig c = parse("optimizer: q_galore_adamw8bit\n" + targets +
                              "qgalore_rank: 8\nqgalore_update_proj_gap: 50\nqgalore_scale: 0.5\nqgalore_proj_type: std\n"
                              "qgalore_proj_quant: false\nqgalore_proj_bits: 2\nqgalore_proj_group_size: 128\n"
                              "qgalore_cos_threshold: -0.5\nqgalore_gamma_proj: 3\nqgalore_queue_size: 4\n"
                              "optim_args: {min_8bit_size: 100}\nweight_decay: 0.1\n");
  CHECK(c.optimizer_qgalore());
  CHECK(c.optimizer_low_rank());
  CHECK_FALSE(c.optimizer_galore());
  CHECK_FALSE(c.optimizer_adamw());
  CHECK(c.unknown_keys.empty());  // weight_decay is Axolotl's to hand it
  CHECK(c.qgalore.rank == 8);
  CHECK(c.qgalore.update_proj_gap == 50);
  CHECK(c.qgalore.scale == 0.5);
  CHECK_FALSE(c.qgalore.proj_quant);
  CHECK(c.qgalore.proj_bits == 2);
  CHECK(c.qgalore.proj_group_size == 128);
  CHECK(c.qgalore.cos_threshold == -0.5);
  CHECK(c.qgalore.gamma_proj == 3);
  CHECK(c.qgalore.queue_size == 4);
  CHECK(c.optim_arg("min_8bit_size", 0) == 100);
  const TrainConfig again = parse(config_to_yaml(c));
  CHECK(again.qgalore.queue_size == 4);
  CHECK(again.qgalore.cos_threshold == -0.5);  // a negative one is a value, not unset
  CHECK_FALSE(again.qgalore.proj_quant);
  CHECK(again.optim_args == c.optim_args);
  CHECK(again.unknown_keys.empty());
  // Axolotl's targets: a matrix whose parameter name holds an entry (the embedding too).
  CHECK(low_rank_projects(c, "model.embed_tokens.weight", 2));
  CHECK(low_rank_projects(c, "model.layers.1.self_attn.q_proj.weight", 2));
  CHECK_FALSE(low_rank_projects(c, "model.layers.1.self_attn.k_proj.weight", 2));
  // Its betas as Axolotl passes them: both or neither.
  CHECK(parse("optimizer: q_galore_adamw8bit\n" + targets + "adam_beta2: 0.99\n").adam_beta2 == 0.999);
  CHECK(parse("optimizer: q_galore_adamw8bit\n" + targets + "adam_beta1: 0.8\nadam_beta2: 0.99\n").adam_beta2 == 0.99);
  // Read with Q-GaLore alone; not written with another optimizer.
  CHECK(parse("qgalore_rank: 8\n").unknown_keys == std::vector<std::string>{"qgalore_rank"});
  CHECK(parse(config_to_yaml(parse("optimizer: adamw_torch\n"))).unknown_keys.empty());
  CHECK(starts_with(error_with("optimizer: q_galore_adamw8bit\n" + targets + "qgalore_proj_type: reverse_std\n"),
                    "cfg.yaml:5: qgalore_proj_type: expected one of std, got 'reverse_std'"));
  CHECK(starts_with(error_with("optimizer: q_galore_adamw8bit\noptim_target_modules: all_linear\n"),
                    "cfg.yaml:4: optim_target_modules: expected a list with q_galore_adamw8bit (Axolotl matches each "
                    "entry as a substring of the parameter names"));
  CHECK(starts_with(error_with("optimizer: q_galore_adamw8bit\n" + targets + "optim_args: {amsgrad: true}\n"),
                    "cfg.yaml:5: optim_args.amsgrad: expected min_8bit_size (the one QGaLoreAdamW8bit argument"));
  CHECK(starts_with(error_with("optimizer: q_galore_adamw8bit\n" + targets + "optim_args: min_8bit_size=10\n"),
                    "cfg.yaml:5: optim_args: expected a map with q_galore_adamw8bit"));
  CHECK(starts_with(error_with("optimizer: q_galore_adamw8bit\n" + targets + "qgalore_queue_size: 0\n"),
                    "cfg.yaml:5: qgalore_queue_size: expected an integer >= 1"));
  // The tiny preset's q_proj basis (256 x 256 at rank 256) is 65536 elements: 1000 does not divide it.
  CHECK(starts_with(error_with("optimizer: q_galore_adamw8bit\n" + targets + "qgalore_proj_group_size: 1000\n"),
                    "cfg.yaml:5: qgalore_proj_group_size: expected a qgalore_proj_group_size dividing every basis' size"));
  CHECK(starts_with(error_with("optimizer: q_galore_adamw8bit\n" + targets + "adapter: lora\nlora_target_linear: true\n"),
                    "cfg.yaml:5: adapter: expected no adapter with q_galore_adamw8bit"));
  CHECK(starts_with(error_with("optimizer: q_galore_adamw8bit\n" + targets + "zero_stage: 1\n"),
                    "cfg.yaml:3: optimizer: expected an optimizer ZeRO stage 1 shards"));
  CHECK(starts_with(error_with("optimizer: q_galore_adamw8bit\n"),
                    "cfg.yaml:3: optimizer: expected optim_target_modules with q_galore_adamw8bit"));
}
