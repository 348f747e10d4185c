// defines: precision_rows, check_bfloat16 (Axolotl's `bfloat16: true`, bf16 weights without an f32
// master copy, and its rules against the rest of a config)
#include <string>

#include "train/config_field_builders.h"
#include "train/config_fields.h"

namespace llm {
using namespace field_builders;

std::vector<ConfigField> precision_rows(const char* section) {
  return {
      flag("bfloat16", section, MEMBER(bfloat16),
           "bf16 weights, f32 gradients and bf16 AdamW moments, no f32 master copy (Axolotl's bf16 model, "
           "torch's fused AdamW); computes in bf16 on a GPU, in f32 on the CPU"),
  };
}

// Full fine-tuning with AdamW on one rank or data parallel: what keeps f32 master weights
// (ZeRO's slices, an adapter run's f32 adapters) or changes weights outside AdamW is refused.
void check_bfloat16(const TrainConfig& c, const Where& w) {
  if (!c.adapter.empty())
    fail(w, "no adapter with it (adapters train in f32 over a bf16 base with bf16: true)", "adapter: " + c.adapter);
  if (c.zero_stage > 0)
    fail(w, "zero_stage 0 with it (ZeRO keeps f32 master slices; bf16: true computes in bf16 over them)",
         "zero_stage " + std::to_string(c.zero_stage));
  if (c.optimizer_8bit() || c.optimizer == "adopt_adamw")
    fail(w, "an AdamW optimizer with full moments (adamw_torch, adamw_torch_fused, adamw, paged_adamw_32bit) with it",
         "optimizer: " + c.optimizer);
  if (c.fp8) fail(w, "no fp8 with it (fp8's casts are made from f32 weights)", "fp8: true");
  if (c.qat_group_size > 0) fail(w, "no qat with it (fake quantisation reads f32 weights)", "qat");
  if (!c.pruning_targets.empty()) fail(w, "no llmcompressor with it (its masks multiply f32 weights)", "llmcompressor");
}

}  // namespace llm
