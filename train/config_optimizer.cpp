// defines: resolve_optimizer (the optimizer's keys across each other: Axolotl's defaults for its
// own optimizer classes, the Trainer's groups Muon refuses, optim_args' use, what ZeRO shards)
#include "train/config_fields.h"
#include "train/optimizer_groups.h"

namespace llm {

namespace {

// The optimizers TrainConfig::optimizer_adamw() holds: AdamW's update, the one engine/sharded_adamw.h
// shards under ZeRO (test_config_optimizers checks the two agree).
constexpr const char* kShardedOptimizers =
    "adamw_torch, adamw_torch_fused, adamw, paged_adamw_32bit, adamw_8bit, adamw_bnb_8bit, paged_adamw_8bit, "
    "optimi_adamw or adamc";

// Axolotl's own optimizers (ADOPT, optimi's AdamW, AdamC, AdamWFp8, Muon's AdamW) are handed the Adam betas
// only when adam_beta1 and adam_beta2 are both set, and adam_epsilon only when set, "set" being a
// value Python finds true (a 0 counts as unset); otherwise their own defaults hold. Written into
// the resolved config, they stay the same on a resume.
void default_adam_args(TrainConfig& c, const GivenKeys& keys, double beta1, double beta2, double eps) {
  const auto set = [&keys](const char* key, double value) { return keys.given(key) && value != 0; };
  if (!set("adam_beta1", c.adam_beta1) || !set("adam_beta2", c.adam_beta2)) {
    c.adam_beta1 = beta1;
    c.adam_beta2 = beta2;
  }
  if (!set("adam_epsilon", c.adam_epsilon)) c.adam_epsilon = eps;
}

// The Trainer's parameter groups (LoRA+'s, embedding_lr*, lr_groups), which an optimizer that
// groups the parameters itself, or takes the whole model, would leave unused: refused, `why` said.
void refuse_trainer_groups(const TrainConfig& c, const GivenKeys& keys, const std::string& why) {
  for (const char* key : {"loraplus_lr_ratio", "embedding_lr_scale", "embedding_lr", "lr_groups"})
    if (keys.given(key))
      fail(keys.at(key), std::string("no ") + key + " with optimizer: " + c.optimizer + " (" + why + ")", "set");
}

// transformers' layer-wise GaLore and APOLLO: a hook steps each parameter's own optimizer and schedule as its
// gradient completes, and the Trainer's optimizer and schedule are stand-ins that do nothing.
void resolve_layerwise(const TrainConfig& c, const GivenKeys& keys, std::set<std::string>& unknown) {
  const Where& at = keys.at("optimizer");
  if (c.optimizer == "galore_adafactor_layerwise")
    fail(at, "galore_adamw_layerwise, galore_adamw_8bit_layerwise or galore_adafactor (transformers builds "
             "galore_adafactor_layerwise's Adafactors before it turns relative_step off, and galore_torch's Adafactor "
             "raises on a learning rate beside relative_step)", c.optimizer);
  if (c.gradient_accumulation_steps != 1)
    fail(keys.at(keys.given("gradient_accumulation_steps") ? "gradient_accumulation_steps" : "batch_size"),
         "gradient_accumulation_steps 1 with " + c.optimizer + " (each update runs as its gradient completes in "
         "backward; transformers raises too)", std::to_string(c.gradient_accumulation_steps));
  // Axolotl builds these schedules itself, over the Trainer's stand-in optimizer: the parameters'
  // own optimizers would stay at learning_rate, the log showing a schedule nobody follows.
  std::string axolotl_schedule;
  if (c.lr_scheduler == "one_cycle" || c.lr_scheduler == "rex") axolotl_schedule = "lr_scheduler: " + c.lr_scheduler;
  else if (c.lr_scheduler == "cosine" && c.lr_quadratic_warmup) axolotl_schedule = "lr_quadratic_warmup";
  else if (c.lr_scheduler == "cosine" && c.cosine_min_lr_ratio > 0) axolotl_schedule = "cosine_min_lr_ratio";
  else if (c.jagged_restart_steps > 0) axolotl_schedule = "jagged_restart_steps";
  if (!axolotl_schedule.empty())
    fail(keys.at(axolotl_schedule.rfind("lr_scheduler", 0) == 0 ? "lr_scheduler" : axolotl_schedule),
         "one of transformers' schedules with " + c.optimizer + " (Axolotl builds this one over the Trainer's "
         "stand-in optimizer, and every parameter would stay at learning_rate)", axolotl_schedule);
  if (c.lr_scheduler == "reduce_lr_on_plateau")
    fail(keys.at("lr_scheduler"), "one of transformers' other schedules with " + c.optimizer + " (each parameter's "
         "ReduceLROnPlateau would be stepped in backward without a metric, which torch refuses)", c.lr_scheduler);
  // Each parameter's own schedule advances only on the steps its hook runs: LISA's frozen layers' would lag.
  if (c.lisa())
    fail(keys.at("lisa_n_layers"), "no LISA with " + c.optimizer + " (a frozen layer's own schedule would stop "
         "while the others' go on)", "lisa_n_layers " + std::to_string(c.lisa_n_layers));
  // The gradients are gone by the time the Trainer would clip them.
  if (keys.given("max_grad_norm")) unknown.insert("max_grad_norm");
}

// GaLore and APOLLO as transformers builds them, Q-GaLore as Axolotl does: their targets must be
// named; GaLore's classes get the learning rate alone (their own betas, eps and weight decay run),
// APOLLO's the learning rate, betas and eps (no weight decay), Q-GaLore's Axolotl's; all replace
// the Trainer's groups.
void resolve_low_rank(TrainConfig& c, const GivenKeys& keys, std::set<std::string>& unknown) {
  const std::string name = c.optimizer_apollo() ? "APOLLO" : c.optimizer_qgalore() ? "Q-GaLore" : "GaLore";
  if (c.optim_target_modules.empty() && !c.optim_target_all_linear)
    fail(keys.at("optimizer"), "optim_target_modules with " + c.optimizer + " (the linear modules " + name +
                                   " projects, or all_linear; " + (c.optimizer_qgalore() ? "Axolotl" : "transformers") +
                                   " raises without)",
         "none");
  for (const char* key : {"adam_beta1", "adam_beta2", "adam_epsilon", "weight_decay"})
    if (keys.given(key) && (c.optimizer_galore() || (c.optimizer_apollo() && std::string(key) == "weight_decay")))
      unknown.insert(key);
  refuse_trainer_groups(c, keys, (c.optimizer_qgalore() ? "Axolotl's " : "transformers' ") + name +
                                     " groups replace the Trainer's");
  if (!c.adapter.empty())
    fail(keys.at("adapter"), "no adapter with " + c.optimizer + " (" + name + " projects the gradients of full weights)",
         c.adapter);
  for (const char* key : {"rank", "update_proj_gap"})
    if (c.optim_arg(key, 1) < 1)
      fail(keys.at("optim_args"), std::string(key) + " of at least 1 (" + name + "'s)", yaml_number(c.optim_arg(key, 1)));
  if (c.optimizer_apollo())
    if (const std::string unfit = apollo_unfit_target(c); !unfit.empty())
      fail(keys.at("optim_args"), "proj_type std or scale_type tensor (channel factors, one a row or column of the "
                                  "low-rank gradient, do not fit " + unfit + "; apollo_torch's broadcast fails)",
           write_optim_args(c));
  if (c.optimizer_qgalore()) {
    default_adam_args(c, keys, 0.9, 0.999, 1e-8);  // Axolotl's, when not given
    check_qgalore(c, keys);
  }
  if (c.optimizer_layerwise()) resolve_layerwise(c, keys, unknown);
}

}  // namespace

void resolve_optimizer(TrainConfig& c, const GivenKeys& keys, std::set<std::string>& unknown) {
  // With LoRA+, Axolotl builds PEFT's optimizer, whose own groups replace its embedding and lr
  // groups: those keys go unused, and the one warning of unused keys says so.
  if (c.loraplus_lr_ratio > 0)
    for (const char* key : {"embedding_lr_scale", "embedding_lr", "lr_groups"})
      if (keys.given(key)) unknown.insert(key);
  // transformers reads optim_args for AdEMAMix, Schedule-Free, GaLore and APOLLO here, Axolotl for
  // Muon, AdamC and CAME (and both for optimizers not built here).
  if (keys.given("optim_args") && !c.optimizer_ademamix() && !c.optimizer_muon() && c.optimizer != "adamc" &&
      c.optimizer != "came_pytorch" && !c.optimizer_schedule_free() && !c.optimizer_torchao() &&
      !c.optimizer_torch_optim() && !c.optimizer_low_rank() && c.optimizer != "stable_adamw" && c.optimizer != "grokadamw")
    unknown.insert("optim_args");
  if (c.optimizer == "grokadamw") {
    // transformers hands GrokAdamW lr and its own arguments: its betas and eps are the class's.
    for (const char* key : {"adam_beta1", "adam_beta2", "adam_epsilon"})
      if (keys.given(key)) unknown.insert(key);
    // Its beta1 depends on a tensor's position in its group: Axolotl's groups are not built with it.
    refuse_trainer_groups(c, keys, "its beta1 follows a tensor's position in the Trainer's two groups");
    if (!c.adapter.empty())
      fail(keys.at("adapter"), "no adapter with grokadamw (its beta1 follows a tensor's position in the Trainer's "
                               "groups, held to the Trainer for full fine-tuning only)", c.adapter);
  }
  // transformers passes bool() of optim_args' decouple_lr string: any value given turns it on.
  if (c.optimizer == "stable_adamw" && c.optim_args.count("decouple_lr") && c.optim_args.at("decouple_lr") == 0)
    fail(keys.at("optim_args"), "decouple_lr true or absent with stable_adamw (transformers reads any value given, "
                                "false too, as true)", "decouple_lr false");
  // AdamC's max_lr replaces every group's peak: a decayed group learning at another lr (an
  // lr_groups entry's) would decay by lr^2 / max_lr with its own lr, which one factor cannot say.
  if (c.optim_args.count("max_lr") && !c.lr_groups.empty())
    fail(keys.at("optim_args"), "no max_lr with lr_groups (AdamC's decay is then not one factor of the schedule)",
         "max_lr with " + std::to_string(c.lr_groups.size()) + " lr_groups");
  // beta3's warmup interpolates log beta1 and log beta3 (transformers stops on log 0).
  if (c.optimizer_ademamix() && c.optim_arg("t_beta3", 0) > 0) {
    const double beta1 = c.optim_arg("beta1", c.adam_beta1), beta3 = c.optim_arg("beta3", 0.9999);
    if (beta1 <= 0 || beta3 <= 0)
      fail(keys.at("optim_args"), "beta1 and beta3 above 0 with t_beta3 (its warmup interpolates their logarithms)",
           "beta1 " + yaml_number(beta1) + ", beta3 " + yaml_number(beta3));
  }
  if (c.optimizer == "adopt_adamw") default_adam_args(c, keys, 0.9, 0.9999, 1e-6);
  if (c.optimizer == "optimi_adamw") default_adam_args(c, keys, 0.9, 0.99, 1e-6);
  if (c.optimizer == "adamc" || c.optimizer == "ao_adamw_fp8") default_adam_args(c, keys, 0.9, 0.999, 1e-8);
  // CAME: Axolotl reads adam_beta1, adam_beta2 and adam_beta3 each as given (0.9, 0.999, 0.9999
  // unless), eps1 from adam_epsilon when given, else 1e-30, and eps2 from adam_epsilon2; the
  // other optimizers take no beta3 or second epsilon.
  if (c.optimizer == "came_pytorch" && !keys.given("adam_epsilon")) c.adam_epsilon = 1e-30;
  if (c.optimizer != "came_pytorch")
    for (const char* key : {"adam_beta3", "adam_epsilon2"})
      if (keys.given(key)) unknown.insert(key);
  if (c.optimizer_muon()) {
    default_adam_args(c, keys, 0.95, 0.95, 1e-8);
    // Axolotl's Muon factory groups the parameters itself, so the Trainer's groups (LoRA+'s,
    // embedding_lr*, lr_groups) would go unused: refused.
    refuse_trainer_groups(c, keys, "Axolotl's Muon makes its own parameter groups");
  }
  // torchao's block_size (transformers reads it; bf16_stochastic_round only touches bf16 weights,
  // and llm_train's are f32 beside this optimizer).
  if (c.optimizer_torchao() && c.optim_arg("block_size", 256) != 256)
    fail(keys.at("optim_args"), "block_size 256 with " + c.optimizer + " (torchao's other block sizes are not built)",
         "block_size " + yaml_number(c.optim_arg("block_size", 256)));
  // torch's SGD raises on Nesterov momentum without a momentum or with dampening.
  if (c.optimizer == "sgd" && c.optim_arg("nesterov", 0) != 0 &&
      (c.optim_arg("momentum", 0) <= 0 || c.optim_arg("dampening", 0) != 0))
    fail(keys.at("optim_args"), "momentum above 0 and dampening 0 with nesterov (torch's SGD refuses it otherwise)",
         "momentum " + yaml_number(c.optim_arg("momentum", 0)) + ", dampening " + yaml_number(c.optim_arg("dampening", 0)));
  // Schedule-Free's eval() moves the weights by 1 - 1 / beta1 (the reference divides by it).
  if (c.optimizer_schedule_free() && c.optimizer != "schedule_free_sgd" && c.adam_beta1 <= 0)
    fail(keys.at("adam_beta1"), "adam_beta1 above 0 with " + c.optimizer + " (its evaluation weights divide by it)",
         yaml_number(c.adam_beta1));
  if (c.optimizer_lomo()) {
    // transformers hands LOMO and AdaLomo the model and the rate alone; their updates leave nothing to clip.
    for (const char* key : {"adam_beta1", "adam_beta2", "adam_epsilon", "weight_decay", "max_grad_norm"})
      if (keys.given(key)) unknown.insert(key);
    refuse_trainer_groups(c, keys, "transformers hands it the whole model at one rate");
  }
  if (c.optimizer_low_rank()) resolve_low_rank(c, keys, unknown);
  else if (keys.given("optim_target_modules")) unknown.insert("optim_target_modules");  // read for these alone
  if (!c.optimizer_qgalore())  // Axolotl reads them for Q-GaLore alone
    for (const ConfigField& field : qgalore_rows(""))
      if (keys.given(field.name)) unknown.insert(field.name);
  if (!c.optimizer_adamw() && c.zero_stage >= 1) {  // ZeRO's sharded optimizer (engine/sharded_adamw.h) is AdamW's alone
    std::string from;  // the keys that asked for the sharding
    for (const char* key : {"zero_stage", "fsdp", "fsdp_config", "deepspeed"})
      if (keys.given(key)) from += std::string(from.empty() ? "" : ", ") + key;
    fail(keys.at("optimizer"), "an optimizer ZeRO stage " + std::to_string(c.zero_stage) + " shards (from " +
                                   (from.empty() ? std::string("zero_stage, fsdp or deepspeed") : from) + "): " +
                                   kShardedOptimizers + "; or no sharding with " + c.optimizer,
         c.optimizer);
  }
}

}  // namespace llm
