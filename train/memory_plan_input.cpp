// defines: memory_plan_input (a training config's run as the memory planner takes it)
#include <algorithm>

#include "engine/optimizer.h"
#include "model/lora.h"
#include "train/constant_pruning.h"
#include "train/memory_plan.h"
#include "train/optimizer_groups.h"

namespace llm {

MemoryPlanInput memory_plan_input(const TrainConfig& c, int64_t ranks, bool bf16, bool on_cpu) {
  MemoryPlanInput in;
  in.on_cpu = on_cpu;
  in.offload_params = c.offload_params;
  in.forward_prefetch = c.forward_prefetch;
  in.backward_prefetch = c.backward_prefetch;
  in.merge_lora = c.merge_lora;
  in.model = c.model;
  in.model.tie_word_embeddings = c.model.tie_word_embeddings && !c.unties_embeddings();
  // PEFT's layer_replication: the blocks that run (activations, adapters) and those that hold weights.
  in.model.num_hidden_layers = c.lora.replicated_layers(c.model.num_hidden_layers);
  in.base_layers = c.lora.base_layers_used(c.model.num_hidden_layers);
  // A pair's row holds both of its sequences (KTO trains them one at a time, but its reference
  // and evaluation passes take the rows whole: the plan bounds those too).
  in.sequence_len = c.data.sequence_len * (c.data.preference_pairs ? 2 : 1);
  in.micro_batch_size = c.micro_batch_size;
  in.eval_micro_batch_size = c.eval_micro_batch_size();
  in.gradient_accumulation_steps = c.gradient_accumulation_steps;
  in.ranks = ranks;
  in.zero_stage = c.zero_stage;
  in.bucket_cap_mb = c.ddp_bucket_cap_mb;
  in.recompute_every_n_layers = c.gradient_checkpointing ? c.gradient_checkpointing_every_n_layers : 0;
  in.offload_checkpoints = c.gradient_checkpointing_offload && !on_cpu;
  in.optimizer_8bit = c.optimizer_8bit();
  in.optimizer_moments = c.optimizer_lion() || c.optimizer == "schedule_free_sgd" ? 1 : c.optimizer_ademamix() ? 3 : 2;
  in.optimizer_torch_optim = c.optimizer_torch_optim();
  if (in.optimizer_torch_optim) in.optimizer_moments = static_cast<int>(torch_optim_state_count(torch_optim_config(c)));
  in.optimizer_schedule_free = c.optimizer_schedule_free();
  if (c.optimizer_torchao()) in.optimizer_torchao = c.optimizer_torchao_codes();
  in.optimizer_factored = c.optimizer == "adafactor" || c.optimizer == "came_pytorch";
  in.optimizer_came = c.optimizer == "came_pytorch";
  in.optimizer_muon = c.optimizer_muon();
  if (c.optimizer_low_rank()) {
    in.optimizer_state_bytes = low_rank_state_bytes(c);
    in.optimizer_state_note = c.optimizer_apollo()
                                  ? "APOLLO: AdamW's f32 m and v of the projected gradients and of the rest, f32 bases"
                              : c.optimizer_qgalore()
                                  ? "Q-GaLore: 8-bit AdamW's state of the projected gradients and of the rest, bases as "
                                    "low-bit codes (u8 each) with f32 scales and zero points"
                                  : "GaLore: its optimizer's state of the projected gradients (AdamW's m and v, f32 or "
                                    "8-bit, or Adafactor's means) and of the rest, f32 bases";
    in.layerwise_updates = c.optimizer_layerwise();
    in.optimizer_update_scratch = low_rank_update_scratch_bytes(c);
  }
  if (c.optimizer_lomo()) {  // LOMO's SGD keeps no state, AdaLomo Adafactor's; both update in backward
    in.optimizer_moments = 0;
    in.optimizer_factored = c.optimizer == "adalomo";
    in.layerwise_updates = true;
  }
  if (c.optimizer == "grokadamw") {  // full fine-tuning only (the config refuses adapters)
    in.optimizer_state_bytes = 12.0 * static_cast<double>(c.model.num_parameters());
    in.optimizer_state_note = "GrokAdamW: f32 m, v and gradient EMA";
  }
  in.bf16 = bf16;
  in.bf16_weights = c.bfloat16;
  in.attention = c.attention_kernel();
  in.set_qat(c.qat);
  in.fp8 = c.fp8;
  // The block linears and lm_head its targets name (a norm or the embedding is one target too rare
  // to count).
  for (const std::string& target : c.pruning_targets)
    for (int64_t layer = 0; layer < c.model.num_hidden_layers; layer++)
      for (int k = 0; k < kNumLinear; k++)
        if (pruning_target_matches(target, linear_module_name(layer, k) + ".weight"))
          in.pruning_masks += static_cast<double>(shape_numel(linear_shape(c.model, k)));
  if (!c.adapter.empty()) {
    LoraConfig pairs = c.lora;  // the adapters alone: what modules_to_save adds is base weights
    pairs.modules_to_save.clear();
    in.trainable_parameters = lora_trainable_parameters(in.model, c.lora);
    const int64_t trained_whole = in.trainable_parameters - lora_trainable_parameters(in.model, pairs);
    in.frozen_parameters = c.run_parameters() - trained_whole;
    const bool tied = in.model.tie_word_embeddings;
    in.frozen_lm_head = !(c.lora.saves("lm_head") || (tied && c.lora.saves("embed_tokens")));
    in.trains_embedding = c.lora.saves("embed_tokens") || (tied && c.lora.saves("lm_head"));
    in.head_token_rows = !c.lora.head_token_rows.empty() || (tied && !c.lora.embed_token_rows.empty());
    in.quant_linears = c.quantized_base();
    in.dora = c.lora.use_dora;
    in.quant_format = c.base_format();
    in.nf4_double_quant = c.bnb_4bit_use_double_quant;
  }
  return in;
}

}  // namespace llm
