// defines: precision_rows, resolve_bf16_full, check_bfloat16 (Axolotl's `bf16` and `bfloat16:
// true`, bf16 weights without an f32 master copy, and its rules against the rest of a config)
#include <string>

#include "train/config_field_builders.h"
#include "train/config_fields.h"

namespace llm {
using namespace field_builders;

std::vector<ConfigField> precision_rows(const char* section) {
  return {
      // Axolotl's `bf16: full` loads the model in bf16 and trains it without autocast
      // (TrainingArguments' bf16_full_eval instead of bf16); resolve_bf16_full says what that is here.
      {"bf16", section, "true or false or auto or full",
       "bf16 compute on GPU over f32 master weights; auto: on sm_80+; full: Axolotl's bf16 model without "
       "autocast (full fine-tuning: bfloat16: true; an adapter run: true)",
       [](ReadContext& ctx, const YAML::Node& n, const Where& w) {
         const std::string given = n.IsScalar() ? n.Scalar() : "";
         ctx.config.bf16 = given == "full" || given == "auto" ? given : read_bool(n, w, " or auto or full") ? "true" : "false";
       },
       [](const TrainConfig& c) { return yaml_string(c.bf16); }},
      flag("bfloat16", section, MEMBER(bfloat16),
           "bf16 weights, f32 gradients and bf16 AdamW moments, no f32 master copy (Axolotl's bf16 model, "
           "torch's fused AdamW); computes in bf16 on a GPU, in f32 on the CPU"),
  };
}

// An adapter run's adapters stay f32 over a bf16 base under `bf16: full` too (PEFT upcasts them),
// which is what bf16: true trains here; full fine-tuning's weights are all bf16: bfloat16.
void resolve_bf16_full(TrainConfig& c) {
  if (c.bf16 != "full") return;
  c.bf16 = "true";
  if (c.adapter.empty()) c.bfloat16 = true;
}

// Full fine-tuning with AdamW on one rank or data parallel: what keeps f32 master weights
// (ZeRO's slices, an adapter run's f32 adapters) or changes weights outside AdamW is refused.
void check_bfloat16(const TrainConfig& c, const Where& w) {
  if (!c.adapter.empty())
    fail(w, "no adapter with it (adapters train in f32 over a bf16 base with bf16: true)", "adapter: " + c.adapter);
  if (c.zero_stage > 0)
    fail(w, "zero_stage 0 with it (ZeRO keeps f32 master slices; bf16: true computes in bf16 over them)",
         "zero_stage " + std::to_string(c.zero_stage));
  if (!c.optimizer_torch_adamw())
    fail(w, "an AdamW optimizer with full moments (adamw_torch, adamw_torch_fused, adamw, paged_adamw_32bit) with it",
         "optimizer: " + c.optimizer);
  if (c.fp8) fail(w, "no fp8 with it (fp8's casts are made from f32 weights)", "fp8: true");
  if (c.qat.on()) fail(w, "no qat with it (fake quantisation reads f32 weights)", "qat");
  if (!c.pruning_targets.empty()) fail(w, "no llmcompressor with it (its masks multiply f32 weights)", "llmcompressor");
}

}  // namespace llm
