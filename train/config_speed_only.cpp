// defines: speed_only_rows (Axolotl switches for its fused kernels: accepted, listed by --keys as
// speed only, and named once at start-up, since llm_train runs its own kernels for the same math)
#include "train/config_fields.h"

namespace llm {
namespace {

struct SpeedOnly {
  const char* key;
  const char* kernel;  // what Axolotl swaps in
};

const SpeedOnly kSpeedOnly[] = {
    {"lora_mlp_kernel", "its Triton LoRA kernel for the MLP (gate, up, down)"},
    {"lora_qkv_kernel", "its Triton LoRA kernel for q, k and v"},
    {"lora_o_kernel", "its Triton LoRA kernel for o"},
    {"liger_rope", "Liger's RoPE kernel"},
    {"liger_rms_norm", "Liger's RMSNorm kernel"},
    {"liger_glu_activation", "Liger's SwiGLU kernel"},
    {"liger_layer_norm", "Liger's LayerNorm kernel (Llama has none)"},
    {"liger_cross_entropy", "Liger's cross-entropy kernel"},
    {"liger_fused_linear_cross_entropy", "Liger's lm_head + cross-entropy fused in chunks"},
    {"dpo_padding_free", "TRL's padding-free DPO batches (a pair's two sequences here always share one row, unpadded)"},
    {"dpo_use_logits_to_keep", "TRL's logits for the completion tokens only (here only rows with a target reach lm_head)"},
    {"fp8_enable_fsdp_float8_all_gather", "torchao's fp8 all-gather of FSDP's weights (here ZeRO gathers in the compute dtype)"},
    {"precompute_ref_log_probs", "TRL's reference log-likelihoods computed once before training (for rl here they always are)"},
    {"relora_cpu_offload", "ReLoRA's merges done on the CPU (here a restart merges where the weights are)"},
};

}  // namespace

std::vector<ConfigField> speed_only_rows(const char* section) {
  std::vector<ConfigField> rows;
  for (const SpeedOnly& s : kSpeedOnly) {
    const std::string key = s.key;
    rows.push_back({key, section, "true or false",
                    std::string("speed only: Axolotl swaps in ") + s.kernel +
                        "; llm_train runs its own kernels, computing the same (said once at start-up)",
                    [key](ReadContext& ctx, const YAML::Node& n, const Where& w) {
                      if (read_bool(n, w)) ctx.config.speed_only_keys.push_back(key);
                    },
                    {}});
  }
  return rows;
}

}  // namespace llm
