// defines: relora_rows, jagged_restart_rows, check_relora (Axolotl's ReLoRA and its jagged
// learning-rate restarts; train/relora.h, engine/lr_schedule.h)
#include <string>

#include "train/config_field_builders.h"
#include "train/config_fields.h"

namespace llm {
using namespace field_builders;

std::vector<ConfigField> relora_rows(const char* section) {
  return {
      flag("relora", section, MEMBER(relora),
           "ReLoRA: every jagged_restart_steps steps the adapters are merged into the base, drawn afresh, and their "
           "AdamW moments pruned"),
      choice("relora_prune_method", section, MEMBER(relora_prune_method), {"magnitude", "random", "reset"},
             "ReLoRA's pruning of the adapters' moments at a restart: the smallest by magnitude, or at random (reset: "
             "random at 0.999 unless relora_prune_ratio says)"),
      number("relora_prune_ratio", section, MEMBER(relora_prune_ratio), kUnit,
             "the share of the moments a restart zeroes (unset: 0.9; 0.999 for reset)"),
  };
}

std::vector<ConfigField> jagged_restart_rows(const char* section) {
  return {
      integer("jagged_restart_steps", section, MEMBER(jagged_restart_steps), 0, kNoMax,
              "Axolotl's jagged restarts: the learning rate re-warms every this many steps (ReLoRA's period; 0: off)"),
      integer("jagged_restart_warmup_steps", section, MEMBER(jagged_restart_warmup_steps), 0, kNoMax,
              "the re-warmup after each jagged restart (0 or unset: 10)"),
      integer("jagged_restart_anneal_steps", section, MEMBER(jagged_restart_anneal_steps), 0, kNoMax,
              "the anneal before each jagged restart (0 or unset: 1)"),
  };
}

// Axolotl's own rules (jagged_restart_steps with it, a LoRA or QLoRA adapter, no FSDP or
// DeepSpeed), and what is built here: no DoRA, AdamW with f32 moments, every rank holding whole
// moments (ZeRO shards them).
void check_relora(const TrainConfig& c, const Where& w) {
  if (c.jagged_restart_steps <= 0) fail(w, "jagged_restart_steps with it (ReLoRA's period)", "none");
  if (c.adapter != "lora" && c.adapter != "qlora")
    fail(w, "adapter: lora or qlora with ReLoRA", c.adapter.empty() ? "no adapter" : "adapter: " + c.adapter);
  if (c.lora.use_dora) fail(w, "no DoRA with ReLoRA", "peft_use_dora: true");
  if (c.zero_stage > 0) fail(w, "zero_stage 0 with ReLoRA (fsdp and deepspeed are refused by Axolotl too)",
                             "zero_stage " + std::to_string(c.zero_stage));
  if (!c.optimizer_torch_adamw())
    fail(w, "AdamW with f32 moments with ReLoRA", "optimizer: " + c.optimizer);
  if (!c.lora.modules_to_save.empty())
    fail(w, "no lora_modules_to_save with ReLoRA (a restart merges adapters only)", "lora_modules_to_save");
}

}  // namespace llm
