// Tests for the optimizer keys of train/config: the optimizers' spellings and what each takes
// with it (ZeRO, bfloat16, LISA, one_cycle), Axolotl's defaults for its own optimizer classes, and
// optim_args as transformers and Axolotl read them.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "test/config_fixture.h"
#include "train/optimizer_groups.h"

using namespace llm;
using namespace llm::config_test;

namespace {
// The optimizers ZeRO shards, as its refusal lists them.
const std::vector<std::string> kSharded = {"adamw_torch", "adamw_torch_fused", "adamw",    "paged_adamw_32bit",
                                           "adamw_8bit",  "adamw_bnb_8bit",    "paged_adamw_8bit", "optimi_adamw",
                                           "adamc"};
const std::string kShardedList =
    "adamw_torch, adamw_torch_fused, adamw, paged_adamw_32bit, adamw_8bit, adamw_bnb_8bit, paged_adamw_8bit, "
    "optimi_adamw or adamc";
}  // namespace

TEST_CASE("optimizer: ZeRO's refusal lists exactly the optimizers it shards") {
  for (const std::string& name : kSharded) {
    CAPTURE(name);
    CHECK(parse("optimizer: " + name + "\n").optimizer_adamw());
    CHECK(parse("optimizer: " + name + "\nzero_stage: 2\n").zero_stage == 2);
  }
  // torchao's 8-bit AdamW is AdamW by name but not one of them (its state is torchao's own).
  CHECK(!parse("optimizer: adamw_torch_8bit\n").optimizer_adamw());
}

TEST_CASE("optimizer: bitsandbytes' Lion spellings, with the Adam betas; no ZeRO, as ADOPT") {
  for (const std::string name : {"lion_32bit", "paged_lion_32bit", "lion_8bit", "paged_lion_8bit"}) {
    CAPTURE(name);
    const TrainConfig c = parse("optimizer: " + name + "\nadam_beta2: 0.99\n");
    CHECK(c.optimizer_lion());
    CHECK(!c.optimizer_adamw());
    CHECK(c.optimizer_8bit() == (name.find("8bit") != std::string::npos));
    CHECK(c.adam_beta1 == 0.9);  // transformers hands bitsandbytes' Lion the Trainer's betas
    CHECK(c.adam_beta2 == 0.99);
    CHECK(error_with("optimizer: " + name + "\nzero_stage: 2\n") ==
          "cfg.yaml:3: optimizer: expected an optimizer ZeRO stage 2 shards (from zero_stage): " +
          kShardedList + "; or no sharding with " + name + ", got " + name);
  }
  CHECK(parse("optimizer: paged_adamw_8bit\n").optimizer_adamw());
  CHECK(!parse("optimizer: adopt_adamw\n").optimizer_adamw());
  CHECK(!parse("optimizer: adafactor\n").optimizer_adamw());
  CHECK(!parse("optimizer: paged_ademamix_8bit\n").optimizer_adamw());
  CHECK(error_with("optimizer: adafactor\nzero_stage: 1\n") ==
        "cfg.yaml:3: optimizer: expected an optimizer ZeRO stage 1 shards (from zero_stage): " +
        kShardedList + "; or no sharding with adafactor, got adafactor");
  // The keys that asked for it, as Axolotl's FSDP 2 configs ask (fsdp_version itself sets nothing).
  CHECK(error_with("optimizer: adafactor\nfsdp_version: 2\nfsdp_config: {reshard_after_forward: true}\n") ==
        "cfg.yaml:3: optimizer: expected an optimizer ZeRO stage 3 shards (from fsdp_config): " +
        kShardedList + "; or no sharding with adafactor, got adafactor");
}

TEST_CASE("optimizer: muon as Axolotl's factory takes it: betas 0.95 / 0.95 unless both given, its optim_args") {
  const TrainConfig c = parse("optimizer: muon\nadam_beta1: 0.8\n");
  CHECK(c.optimizer_muon());
  CHECK(!c.optimizer_adamw());
  CHECK(c.adam_beta1 == 0.95);  // one beta alone is not handed on
  CHECK(c.adam_beta2 == 0.95);
  CHECK(c.adam_epsilon == 1e-8);
  const TrainConfig both = parse("optimizer: muon\nadam_beta1: 0.8\nadam_beta2: 0.9\nadam_epsilon: 1e-6\n");
  CHECK(both.adam_beta1 == 0.8);
  CHECK(both.adam_beta2 == 0.9);
  CHECK(both.adam_epsilon == 1e-6);
  // Axolotl tests them for truth: a 0 is unset, and the factory's defaults hold.
  const TrainConfig zero = parse("optimizer: muon\nadam_beta1: 0\nadam_beta2: 0.9\nadam_epsilon: 0\n");
  CHECK(zero.adam_beta1 == 0.95);
  CHECK(zero.adam_beta2 == 0.95);
  CHECK(zero.adam_epsilon == 1e-8);
  // optim_args: Muon's keywords as a map; a string's values Axolotl hands on as strings, which
  // Muon cannot take.
  const std::map<std::string, double> want{{"momentum", 0.9}, {"nesterov", 0}, {"ns_steps", 3}};
  CHECK(parse("optimizer: muon\noptim_args: {momentum: 0.9, nesterov: false, ns_steps: 3}\n").optim_args == want);
  CHECK(error_with("optimizer: muon\noptim_args: 'momentum=0.9'\n") ==
        "cfg.yaml:4: optim_args: expected a map with muon (Axolotl passes a 'key=value' string's values on as "
        "strings), got a string");
  // Muon takes no other keyword (Axolotl stops with a TypeError), nor the Trainer's groups.
  CHECK(error_with("optimizer: muon\noptim_args: {lr_ratio: 2}\n") ==
        "cfg.yaml:4: optim_args.lr_ratio: expected momentum, nesterov or ns_steps (Muon's arguments), got lr_ratio");
  CHECK(error_with("optimizer: muon\nembedding_lr_scale: 0.5\n") ==
        "cfg.yaml:4: embedding_lr_scale: expected no embedding_lr_scale with optimizer: muon (Axolotl's Muon makes its "
        "own parameter groups), got set");
  CHECK(starts_with(error_with("optimizer: muon\nzero_stage: 1\n"),
                    "cfg.yaml:3: optimizer: expected an optimizer ZeRO stage 1 shards"));
}

TEST_CASE("optimizer: optimi_adamw: torch-optimi's defaults unless given; not with bfloat16, ReLoRA or LISA") {
  const TrainConfig c = parse("optimizer: optimi_adamw\nadam_beta2: 0.9\n");
  CHECK(c.optimizer_adamw());  // AdamW's update: ZeRO shards it
  CHECK(!c.optimizer_torch_adamw());
  CHECK(c.adam_beta1 == 0.9);
  CHECK(c.adam_beta2 == 0.99);  // one beta alone is not handed on
  CHECK(c.adam_epsilon == 1e-6);
  const TrainConfig given = parse("optimizer: optimi_adamw\nadam_beta1: 0.8\nadam_beta2: 0.9\nadam_epsilon: 1e-8\n");
  CHECK(given.adam_beta1 == 0.8);
  CHECK(given.adam_beta2 == 0.9);
  CHECK(given.adam_epsilon == 1e-8);
  CHECK(starts_with(error_with("optimizer: optimi_adamw\nbfloat16: true\n"),
                    "cfg.yaml:4: bfloat16: expected an AdamW optimizer with full moments"));
  CHECK(error_with("optimizer: optimi_adamw\nlisa_n_layers: 1\nlisa_step_interval: 2\n") ==
        "cfg.yaml:4: lisa_n_layers: expected an AdamW optimizer with LISA, got optimizer: optimi_adamw");
  // Axolotl's create_optimizer groups its own optimizer classes: embed_tokens / lm_head undecayed.
  CHECK(parse("optimizer: optimi_adamw\n").grouped_optimizer());
  CHECK(parse("optimizer: adopt_adamw\n").grouped_optimizer());
  CHECK(!parse("optimizer: adamw_torch\n").grouped_optimizer());
  // torch's OneCycleLR finds neither betas nor momentum in optimi's defaults (or Adafactor's).
  for (const std::string optimizer : {"optimi_adamw", "adafactor"}) {
    CHECK(error_with("optimizer: " + optimizer + "\nlr_scheduler: one_cycle\n") ==
          "cfg.yaml:4: lr_scheduler: expected lr_scheduler_kwargs cycle_momentum: false with one_cycle and " +
              optimizer + " (torch's OneCycleLR finds no betas or momentum to cycle in it), got one_cycle");
    CHECK(parse("optimizer: " + optimizer + "\nlr_scheduler: one_cycle\nlr_scheduler_kwargs: {cycle_momentum: false}\n")
              .lr_scheduler == "one_cycle");
  }
}

TEST_CASE("optim_args: AdEMAMix's, as HF's 'key=value,...' string or a map; unused by the other optimizers") {
  const std::map<std::string, double> want{{"alpha", 8}, {"beta3", 0.999}, {"t_alpha", 100}};
  CHECK(parse("optimizer: ademamix\noptim_args: 'beta3=0.999, alpha=8,t_alpha=100'\n").optim_args == want);
  const TrainConfig m = parse("optimizer: ademamix_8bit\noptim_args: {beta3: 0.999, alpha: 8, t_alpha: 100}\n");
  CHECK(m.optim_args == want);
  CHECK(m.unknown_keys.empty());
  // A key transformers does not read for AdEMAMix is listed unused; 0 steps is no warmup.
  const TrainConfig other = parse("optimizer: ademamix\noptim_args: 'gamma=1,t_beta3=0'\n");
  CHECK(other.unknown_keys == std::vector<std::string>{"optim_args.gamma"});
  CHECK(other.optim_args == std::map<std::string, double>{{"t_beta3", 0}});
  CHECK(error_with("optimizer: ademamix\nadam_beta1: 0\noptim_args: 't_beta3=10'\n") ==
        "cfg.yaml:5: optim_args: expected beta1 and beta3 above 0 with t_beta3 (its warmup interpolates their "
        "logarithms), got beta1 0, beta3 0.9999");
  CHECK(error_with("optimizer: ademamix\noptim_args: 'alpha'\n") ==
        "cfg.yaml:4: optim_args: expected 'key=value' pairs separated by commas, got 'alpha'");
  CHECK(starts_with(error_with("optimizer: ademamix\noptim_args: {beta3: 1.5}\n"),
                    "cfg.yaml:4: optim_args.beta3: expected a number in [0, 1)"));
  CHECK(starts_with(error_with("optimizer: ademamix\noptim_args: 't_beta3=-1'\n"),
                    "cfg.yaml:4: optim_args.t_beta3: expected an integer >= 0"));
  // transformers reads them for AdEMAMix only (and for optimizers not built here).
  const TrainConfig adamw = parse("optim_args: 'alpha=8,rank=4'\n");
  CHECK(adamw.unknown_keys == std::vector<std::string>{"optim_args"});
  CHECK(adamw.optim_args.empty());
}

TEST_CASE("optimizer: adamc: AdamC's defaults unless both betas given, max_lr its one optim_arg") {
  const TrainConfig c = parse("optimizer: adamc\nadam_beta2: 0.95\n");
  CHECK(c.optimizer_adamw());  // AdamW's update and state: ZeRO shards it
  CHECK(!c.optimizer_torch_adamw());
  CHECK(c.grouped_optimizer());  // one of Axolotl's own classes: embed_tokens / lm_head undecayed
  CHECK(c.adam_beta1 == 0.9);
  CHECK(c.adam_beta2 == 0.999);  // one beta alone is not handed on
  CHECK(c.adam_epsilon == 1e-8);
  const TrainConfig both = parse("optimizer: adamc\nadam_beta1: 0.8\nadam_beta2: 0.95\nadam_epsilon: 1e-6\n");
  CHECK(both.adam_beta1 == 0.8);
  CHECK(both.adam_beta2 == 0.95);
  CHECK(both.adam_epsilon == 1e-6);
  CHECK(parse("optimizer: adamc\noptim_args: {max_lr: 0.002}\n").optim_args ==
        std::map<std::string, double>{{"max_lr", 0.002}});
  CHECK(parse("optimizer: adamc\nzero_stage: 2\n").zero_stage == 2);
  CHECK(parse("optimizer: adamc\nlisa_n_layers: 1\nlisa_step_interval: 2\n").lisa_n_layers == 1);  // per-tensor steps
  CHECK(error_with("optimizer: adamc\noptim_args: {betas: [0.9, 0.95]}\n") ==
        "cfg.yaml:4: optim_args.betas: expected max_lr (AdamC's argument; its lr, betas, eps and weight_decay come "
        "from learning_rate, adam_beta1, adam_beta2, adam_epsilon and weight_decay), got betas");
  CHECK(error_with("optimizer: adamc\noptim_args: 'max_lr=0.002'\n") ==
        "cfg.yaml:4: optim_args: expected a map with adamc (Axolotl passes a 'key=value' string's values on as "
        "strings), got a string");
  CHECK(starts_with(error_with("optimizer: adamc\noptim_args: {max_lr: 0}\n"),
                    "cfg.yaml:4: optim_args.max_lr: expected a number > 0"));
  CHECK(error_with("optimizer: adamc\noptim_args: {max_lr: 0.002}\nlr_groups: [{name: o, modules: [o_proj], lr: 0.01}]\n") ==
        "cfg.yaml:4: optim_args: expected no max_lr with lr_groups (AdamC's decay is then not one factor of the "
        "schedule), got max_lr with 1 lr_groups");
  // Its bf16 update rounds op by op (torch's foreach ops on bf16 tensors), not as torch's AdamW.
  CHECK(starts_with(error_with("optimizer: adamc\nbfloat16: true\n"),
                    "cfg.yaml:4: bfloat16: expected an AdamW optimizer with full moments"));
}

TEST_CASE("optimizer: came_pytorch: each beta as given, eps1 1e-30 unless adam_epsilon, clip_threshold its optim_arg") {
  const TrainConfig c = parse("optimizer: came_pytorch\nadam_beta2: 0.99\n");
  CHECK(!c.optimizer_adamw());  // its own state: no ZeRO
  CHECK(c.grouped_optimizer());
  CHECK(c.adam_beta1 == 0.9);
  CHECK(c.adam_beta2 == 0.99);  // one beta alone is taken (Axolotl reads each)
  CHECK(c.adam_beta3 == 0.9999);
  CHECK(c.adam_epsilon == 1e-30);
  CHECK(c.adam_epsilon2 == 1e-16);
  const TrainConfig given = parse("optimizer: came_pytorch\nadam_epsilon: 1e-8\nadam_beta3: 0.999\nadam_epsilon2: 1e-12\n"
                                  "optim_args: {clip_threshold: 0.5}\n");
  CHECK(given.adam_epsilon == 1e-8);
  CHECK(given.adam_beta3 == 0.999);
  CHECK(given.adam_epsilon2 == 1e-12);
  CHECK(given.optim_args == std::map<std::string, double>{{"clip_threshold", 0.5}});
  CHECK(given.unknown_keys.empty());
  // beta3 and eps2 are CAME's alone.
  CHECK(parse("adam_beta3: 0.999\nadam_epsilon2: 1e-12\n").unknown_keys ==
        std::vector<std::string>{"adam_beta3", "adam_epsilon2"});
  CHECK(error_with("optimizer: came_pytorch\noptim_args: {d_coef: 2}\n") ==
        "cfg.yaml:4: optim_args.d_coef: expected clip_threshold (CAME's argument; its lr, betas, eps and weight_decay "
        "come from learning_rate, adam_beta1 to adam_beta3, adam_epsilon, adam_epsilon2 and weight_decay), got d_coef");
  CHECK(starts_with(error_with("optimizer: came_pytorch\nzero_stage: 1\n"),
                    "cfg.yaml:3: optimizer: expected an optimizer ZeRO stage 1 shards"));
  CHECK(starts_with(error_with("optimizer: came_pytorch\nbfloat16: true\n"),
                    "cfg.yaml:4: bfloat16: expected an AdamW optimizer with full moments"));
}

TEST_CASE("optimizer: schedule_free_*: the Trainer's Adam settings, weight_lr_power and r its optim_args, no ZeRO") {
  const TrainConfig c = parse("optimizer: schedule_free_adamw\noptim_args: 'weight_lr_power=1,r=0.5,foreach=false'\n");
  CHECK(c.optimizer_schedule_free());
  CHECK(!c.optimizer_adamw());  // its own state: no ZeRO
  CHECK(!c.grouped_optimizer());  // the Trainer's own decay groups
  CHECK(c.optim_args == std::map<std::string, double>{{"weight_lr_power", 1.0}, {"r", 0.5}});
  CHECK(c.unknown_keys == std::vector<std::string>{"optim_args.foreach"});  // transformers reads two keys
  for (const char* name : {"schedule_free_radam", "schedule_free_sgd"}) CHECK(parse(std::string("optimizer: ") + name + "\n").optimizer == name);
  CHECK(starts_with(error_with("optimizer: schedule_free_adamw\nzero_stage: 2\n"),
                    "cfg.yaml:3: optimizer: expected an optimizer ZeRO stage 2 shards"));
  CHECK(starts_with(error_with("optimizer: schedule_free_radam\nbfloat16: true\n"),
                    "cfg.yaml:4: bfloat16: expected an AdamW optimizer with full moments"));
  CHECK(error_with("optimizer: schedule_free_adamw\nadam_beta1: 0\n") ==
        "cfg.yaml:4: adam_beta1: expected adam_beta1 above 0 with schedule_free_adamw (its evaluation weights divide "
        "by it), got 0");
  CHECK(parse("optimizer: schedule_free_sgd\nadam_beta1: 0\n").adam_beta1 == 0);  // SGD's momentum is its own
  CHECK(parse("optimizer: schedule_free_sgd\noptim_args: {r: -1}\n").optim_args.at("r") == -1);  // weights that fall
  CHECK(starts_with(error_with("optimizer: schedule_free_sgd\noptim_args: {weight_lr_power: -1}\n"),
                    "cfg.yaml:4: optim_args.weight_lr_power: expected"));  // lr_max^-1 at lr 0 divides by 0
}

TEST_CASE("optimizer: adamw_torch_8bit and adamw_torch_4bit: torchao's AdamW8bit and AdamW4bit, no ZeRO") {
  const TrainConfig c = parse("optimizer: adamw_torch_8bit\n");
  CHECK(c.optimizer_torchao());
  CHECK(c.optimizer_torchao_codes() == TorchaoCodes::dynamic_8bit);
  CHECK(c.optimizer_8bit());
  CHECK(!c.optimizer_adamw());  // its own state: no ZeRO
  CHECK(starts_with(error_with("optimizer: adamw_torch_8bit\nzero_stage: 1\n"),
                    "cfg.yaml:3: optimizer: expected an optimizer ZeRO stage 1 shards"));
  CHECK(starts_with(error_with("optimizer: adamw_torch_8bit\nbfloat16: true\n"),
                    "cfg.yaml:4: bfloat16: expected an AdamW optimizer with full moments"));
  CHECK(parse("optimizer: adamw_torch_8bit\noptim_args: 'block_size=256,bf16_stochastic_round=true'\n").unknown_keys.empty());
  CHECK(error_with("optimizer: adamw_torch_8bit\noptim_args: {block_size: 128}\n") ==
        "cfg.yaml:4: optim_args: expected block_size 256 with adamw_torch_8bit (torchao's other block sizes are not "
        "built), got block_size 128");
  const TrainConfig four = parse("optimizer: adamw_torch_4bit\noptim_args: {block_size: 256}\n");
  CHECK(four.optimizer_torchao());
  CHECK(four.optimizer_torchao_codes() == TorchaoCodes::dynamic_4bit);
  CHECK(!four.optimizer_8bit());
  CHECK(!four.optimizer_adamw());
  CHECK(four.unknown_keys.empty());
  CHECK(starts_with(error_with("optimizer: adamw_torch_4bit\nzero_stage: 2\n"),
                    "cfg.yaml:3: optimizer: expected an optimizer ZeRO stage 2 shards"));
  CHECK(starts_with(error_with("optimizer: adamw_torch_4bit\nbfloat16: true\n"),
                    "cfg.yaml:4: bfloat16: expected an AdamW optimizer with full moments"));
  // transformers hands AdamW4bit block_size 256 unless optim_args says (torchao's own default, 128, never reaches it).
  CHECK(error_with("optimizer: adamw_torch_4bit\noptim_args: block_size=128\n") ==
        "cfg.yaml:4: optim_args: expected block_size 256 with adamw_torch_4bit (torchao's other block sizes are not "
        "built), got block_size 128");
}

// Axolotl builds AdamWFp8 itself: its groups (embed_tokens and lm_head without decay), the betas
// only when both are set, optim_args' map handed to the constructor (which raises on a key it
// lacks). Axolotl 0.19's ao_adamw_4bit and ao_adamw_8bit have no branch in its builder.
TEST_CASE("optimizer: ao_adamw_fp8: torchao's AdamWFp8 as Axolotl builds it; ao_adamw_4bit and _8bit refused") {
  const TrainConfig c = parse("optimizer: ao_adamw_fp8\nadam_beta1: 0.8\nadam_epsilon: 1e-6\n");
  CHECK(c.optimizer_torchao());
  CHECK(c.optimizer_torchao_codes() == TorchaoCodes::fp8);
  CHECK(!c.optimizer_8bit());
  CHECK(!c.optimizer_adamw());
  CHECK(c.grouped_optimizer());
  CHECK(c.adam_beta1 == doctest::Approx(0.9));  // one beta alone: AdamWFp8's own pair
  CHECK(c.adam_beta2 == doctest::Approx(0.999));
  CHECK(c.adam_epsilon == doctest::Approx(1e-6));
  CHECK(parse("optimizer: ao_adamw_fp8\noptim_args: {block_size: 256, bf16_stochastic_round: false}\n")
            .unknown_keys.empty());
  CHECK(error_with("optimizer: ao_adamw_fp8\noptim_args: {amsgrad: true}\n") ==
        "cfg.yaml:4: optim_args.amsgrad: expected block_size or bf16_stochastic_round (AdamWFp8's arguments built "
        "here; its lr, betas, eps and weight_decay come from learning_rate, adam_beta1, adam_beta2, adam_epsilon and "
        "weight_decay), got amsgrad");
  CHECK(error_with("optimizer: ao_adamw_fp8\noptim_args: block_size=256\n") ==
        "cfg.yaml:4: optim_args: expected a map with ao_adamw_fp8 (Axolotl passes a 'key=value' string's values on "
        "as strings), got a string");
  CHECK(starts_with(error_with("optimizer: ao_adamw_fp8\nzero_stage: 1\n"),
                    "cfg.yaml:3: optimizer: expected an optimizer ZeRO stage 1 shards"));
  CHECK(error_with("optimizer: ao_adamw_4bit\n") ==
        "cfg.yaml:3: optimizer: not supported, optimizer: ao_adamw_4bit (Axolotl 0.19 stops on it: 'Unhandled "
        "optimizer'); torchao's AdamW4bit is optimizer: adamw_torch_4bit");
  CHECK(starts_with(error_with("optimizer: ao_adamw_8bit\n"), "cfg.yaml:3: optimizer: not supported, optimizer: ao_adamw_8bit"));
}

TEST_CASE("optimizer: sgd, adagrad, rmsprop: torch.optim's with transformers' optim_args; no ZeRO") {
  const TrainConfig sgd = parse("optimizer: sgd\noptim_args: momentum=0.9,nesterov=True,weight_decay=0.5\n");
  CHECK(sgd.optimizer_torch_optim());
  CHECK(!sgd.optimizer_adamw());
  const TorchOptimConfig t = torch_optim_config(sgd);
  CHECK(t.kind == TorchOptimKind::sgd);
  CHECK(t.momentum == 0.9);
  CHECK(t.nesterov);
  CHECK(torch_optim_state_count(t) == 1);
  // Its weight_decay is the Trainer's groups' (weight_decay), so optim_args' goes unused.
  CHECK(sgd.unknown_keys == std::vector<std::string>{"optim_args.weight_decay"});
  CHECK(torch_optim_state_count(torch_optim_config(parse("optimizer: sgd\n"))) == 0);
  const TorchOptimConfig adagrad = torch_optim_config(parse("optimizer: adagrad\noptim_args: {lr_decay: 0.1}\n"));
  CHECK(adagrad.kind == TorchOptimKind::adagrad);
  CHECK(adagrad.lr_decay == 0.1);
  CHECK(adagrad.eps == 1e-10);
  const TorchOptimConfig rmsprop =
      torch_optim_config(parse("optimizer: rmsprop\noptim_args: {momentum: 0.5, centered: true, alpha: 0.9}\n"));
  CHECK(rmsprop.kind == TorchOptimKind::rmsprop);
  CHECK(rmsprop.eps == 1e-8);
  CHECK(rmsprop.alpha == 0.9);
  CHECK(torch_optim_state_count(rmsprop) == 3);
  CHECK(error_with("optimizer: sgd\noptim_args: nesterov=true\n") ==
        "cfg.yaml:4: optim_args: expected momentum above 0 and dampening 0 with nesterov (torch's SGD refuses it "
        "otherwise), got momentum 0, dampening 0");
  CHECK(starts_with(error_with("optimizer: rmsprop\noptim_args: {alpha: -1}\n"), "cfg.yaml:4: optim_args.alpha: expected"));
  CHECK(starts_with(error_with("optimizer: adagrad\nzero_stage: 1\n"),
                    "cfg.yaml:3: optimizer: expected an optimizer ZeRO stage 1 shards"));
  // OneCycleLR cycles SGD's and RMSprop's momentum (so their buffer is kept from the start);
  // Adagrad has none, and torch raises.
  const TrainConfig cycled = parse("optimizer: sgd\nlr_scheduler: one_cycle\n");
  CHECK(torch_optim_config(cycled).cycled_momentum);
  CHECK(torch_optim_state_count(torch_optim_config(cycled)) == 1);
  const TrainConfig fixed = parse("optimizer: sgd\nlr_scheduler: one_cycle\nlr_scheduler_kwargs: {cycle_momentum: false}\n");
  CHECK(!torch_optim_config(fixed).cycled_momentum);
  CHECK(torch_optim_state_count(torch_optim_config(fixed)) == 0);
  CHECK(torch_optim_state_count(torch_optim_config(parse("optimizer: rmsprop\nlr_scheduler: one_cycle\n"))) == 2);
  CHECK(starts_with(error_with("optimizer: adagrad\nlr_scheduler: one_cycle\n"),
                    "cfg.yaml:4: lr_scheduler: expected lr_scheduler_kwargs cycle_momentum: false with one_cycle and "
                    "adagrad (torch's OneCycleLR finds no betas or momentum to cycle in it)"));
}

TEST_CASE("optimizer: rmsprop_bnb*: bitsandbytes' RMSprop, its square_avg f32 or 8-bit; what it refuses") {
  for (const char* name : {"rmsprop_bnb", "rmsprop_bnb_32bit", "rmsprop_bnb_8bit"}) {
    CAPTURE(name);
    const TrainConfig c = parse(std::string("optimizer: ") + name + "\n");
    CHECK(c.optimizer_torch_optim());
    const TorchOptimConfig t = torch_optim_config(c);
    CHECK(t.kind == TorchOptimKind::rmsprop);
    CHECK(t.alpha == 0.99);
    CHECK(t.eps == 1e-8);
    CHECK(t.momentum == 0);
    CHECK_FALSE(t.centered);
    CHECK(t.blockwise_8bit == (std::string(name) == "rmsprop_bnb_8bit"));
    CHECK(torch_optim_state_count(t) == 1);
  }
  // transformers hands optim_args' strings on, and bitsandbytes raises on each of them.
  CHECK(error_with("optimizer: rmsprop_bnb_8bit\noptim_args: {alpha: 0.9}\n") ==
        "cfg.yaml:4: optim_args.alpha: expected no optim_args with rmsprop_bnb_8bit (transformers hands bitsandbytes' "
        "RMSprop their values as strings, on which it raises; its alpha 0.99 and eps 1e-8 are what runs), got alpha");
  CHECK(starts_with(error_with("optimizer: rmsprop_bnb\noptim_args: centered=False\n"),
                    "cfg.yaml:4: optim_args.centered: expected no optim_args with rmsprop_bnb"));
  CHECK(starts_with(error_with("optimizer: rmsprop_bnb\nlr_scheduler: one_cycle\n"),
                    "cfg.yaml:4: lr_scheduler: expected lr_scheduler_kwargs cycle_momentum: false with one_cycle and "
                    "rmsprop_bnb (torch's OneCycleLR would cycle its betas[0]"));
  CHECK(starts_with(error_with("optimizer: rmsprop_bnb_8bit\nzero_stage: 2\n"),
                    "cfg.yaml:3: optimizer: expected an optimizer ZeRO stage 2 shards"));
}

TEST_CASE("optimizer: lomo, adalomo: the rate alone; what they refuse") {
  const TrainConfig c = parse("optimizer: lomo\nweight_decay: 0.1\nmax_grad_norm: 1\nadam_beta1: 0.8\n");
  CHECK_FALSE(c.optimizer_adamw());
  CHECK(c.optimizer_lomo());
  CHECK(parse("optimizer: adalomo\nweight_decay: 0.1\n").unknown_keys == std::vector<std::string>{"weight_decay"});
  CHECK(starts_with(error_with("optimizer: adalomo\nlr_groups:\n  - name: a\n    modules: [q_proj]\n    lr: 0.1\n"),
                    "cfg.yaml:4: lr_groups: expected no lr_groups with optimizer: adalomo"));
  CHECK_FALSE(c.optimizer_layerwise());  // every micro-batch's backward updates, accumulation or not
  CHECK(c.unknown_keys == std::vector<std::string>{"adam_beta1", "max_grad_norm", "weight_decay"});
  CHECK(starts_with(error_with("optimizer: lomo\nembedding_lr_scale: 0.5\n"),
                    "cfg.yaml:4: embedding_lr_scale: expected no embedding_lr_scale with optimizer: lomo"));
  CHECK(starts_with(error_with("optimizer: lomo\nlr_scheduler: one_cycle\n"),
                    "cfg.yaml:4: lr_scheduler: expected lr_scheduler_kwargs cycle_momentum: false with one_cycle and lomo"));
  CHECK(starts_with(error_with("optimizer: lomo\nzero_stage: 1\n"),
                    "cfg.yaml:3: optimizer: expected an optimizer ZeRO stage 1 shards"));
  CHECK(starts_with(error_with("optimizer: lomo\nbfloat16: true\n"), "cfg.yaml:4: bfloat16: expected an AdamW optimizer"));
}

TEST_CASE("optimizer: stable_adamw: the Trainer's Adam settings and groups, max_lr and decouple_lr; what it refuses") {
  const TrainConfig c = parse("optimizer: stable_adamw\noptim_args: decouple_lr=True,max_lr=0.02,kahan_sum=True,x=1\n");
  CHECK_FALSE(c.optimizer_adamw());
  CHECK(c.optim_arg("max_lr", 0) == 0.02);
  CHECK(c.optim_args.count("decouple_lr"));
  CHECK(c.unknown_keys == std::vector<std::string>{"optim_args.x"});
  // transformers' bool() of the string 'False' is true: refused rather than run as true.
  CHECK(starts_with(error_with("optimizer: stable_adamw\noptim_args: {decouple_lr: false}\n"),
                    "cfg.yaml:4: optim_args: expected decouple_lr true or absent with stable_adamw"));
  CHECK(starts_with(error_with("optimizer: stable_adamw\nzero_stage: 1\n"),
                    "cfg.yaml:3: optimizer: expected an optimizer ZeRO stage 1 shards"));
  CHECK(starts_with(error_with("optimizer: stable_adamw\nbfloat16: true\n"), "cfg.yaml:4: bfloat16: expected an AdamW"));
  CHECK(starts_with(error_with("optimizer: stable_adamw\nlisa_n_layers: 1\nlisa_step_interval: 2\n"),
                    "cfg.yaml:4: lisa_n_layers: expected an AdamW optimizer with LISA"));
}

TEST_CASE("optimizer: grokadamw: its optim_args, the class's betas and eps; what it refuses") {
  const TrainConfig c = parse("optimizer: grokadamw\nadam_beta1: 0.8\noptim_args: alpha_init=0.9,lamb=1.5,gamma=0.2,"
                              "gradient_clipping=0.5,grokking_signal_decay_rate=0.2,x=1\n");
  CHECK_FALSE(c.optimizer_adamw());
  CHECK(c.optim_arg("alpha_init", 0) == 0.9);
  CHECK(c.optim_arg("gradient_clipping", 0) == 0.5);
  CHECK(c.unknown_keys == std::vector<std::string>{"adam_beta1", "optim_args.x"});
  CHECK(starts_with(error_with("optimizer: grokadamw\noptim_args: {alpha_init: 1.5}\n"),
                    "cfg.yaml:4: optim_args.alpha_init: expected a number in [0, 1]"));
  CHECK(starts_with(error_with("optimizer: grokadamw\nembedding_lr_scale: 0.5\n"),
                    "cfg.yaml:4: embedding_lr_scale: expected no embedding_lr_scale with optimizer: grokadamw"));
  CHECK(starts_with(error_with("optimizer: grokadamw\nadapter: lora\nlora_target_linear: true\n"),
                    "cfg.yaml:4: adapter: expected no adapter with grokadamw"));
  CHECK(starts_with(error_with("optimizer: grokadamw\nzero_stage: 2\n"),
                    "cfg.yaml:3: optimizer: expected an optimizer ZeRO stage 2 shards"));
}
