// The memory planner: one rank's bytes by category for a training run as this engine lays it out
// (what it allocates and when), and the peak they add up to. llm_train prints it at start-up and
// refuses a run whose peak exceeds the memory it has; `llm_bench memory` prints it for any model,
// world size and ZeRO stage. Validated against the CPU allocator's measured peak
// (bench/results/2026-11-28-memory-planner.md).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/attention_kind.h"
#include "model/llama_config.h"
#include "train/config.h"

namespace llm {

struct MemoryPlanInput {
  LlamaConfig model;
  int64_t sequence_len = 2048, micro_batch_size = 1, gradient_accumulation_steps = 1;
  int64_t eval_micro_batch_size = 0;  // eval_batch_size; 0: micro_batch_size
  int64_t ranks = 1;
  int64_t zero_stage = 0;               // 0 to 3 (counts only with ranks > 1)
  double bucket_cap_mb = 25.0;          // ddp_bucket_cap_mb
  int64_t recompute_every_n_layers = 0;  // 0: no gradient checkpointing
  bool offload_checkpoints = false;      // the segments' inputs in host memory (not on a CPU run)
  bool optimizer_8bit = false;
  int optimizer_moments = 2;  // AdamW's and ADOPT's m and v; Lion's one momentum; AdEMAMix's three
  bool optimizer_schedule_free = false;  // its moments: z and v (SGD: z alone)
  // torchao's quantised AdamW, its codes (4-bit: half a byte a code); a token embedding of whole
  // blocks keeps quantised state too.
  std::optional<TorchaoCodes> optimizer_torchao;
  bool optimizer_torch_optim = false;  // torch.optim's SGD, Adagrad, RMSprop: optimizer_moments f32 tensors
  bool optimizer_factored = false;  // Adafactor: f32 running means per row and column of a matrix
  bool optimizer_came = false;      // CAME: factored too, its instability's as well, and an f32 first moment
  // Muon: f32 momentum of the orthogonalised matrices, f32 m and v of embed_tokens and lm_head, the
  // largest matrix's Newton-Schulz scratch during the step.
  bool optimizer_muon = false;
  // The optimizer's state bytes counted tensor by tensor (GaLore's low-rank moments and bases,
  // GrokAdamW's three f32 tensors a parameter), which replace the estimate above when > 0, and
  // what they are, for the table.
  double optimizer_state_bytes = 0;
  std::string optimizer_state_note;
  // A layer-wise optimizer (galore_*_layerwise) updates each weight as its gradient completes in
  // backward and drops that gradient: the gradients are never all held.
  bool layerwise_updates = false;
  // f32 bytes an update holds beside the gradients (APOLLO's scaled gradient of its largest
  // projected matrix): at the step, or in backward beside the one gradient when layer-wise.
  double optimizer_update_scratch = 0;
  bool bf16 = false;  // compute dtype bf16 (a GPU); f32 on the CPU
  // bfloat16: every weight and AdamW's moments in bf16, no master copy (full fine-tuning, no
  // ZeRO); on the CPU (f32 compute) each weight cast to f32 per use.
  bool bf16_weights = false;
  // Adapter runs (adapter: lora or qlora): the parameters that train (f32, with gradients and
  // optimizer state) and the base parameters that do not (kept in the compute dtype, or in NF4
  // for the block linears under qlora, in int8 under load_in_8bit). 0 trainable: every parameter
  // trains.
  int64_t trainable_parameters = 0, frozen_parameters = 0;
  // PEFT's layer_replication: the base's blocks, whose frozen weights the model.num_hidden_layers
  // blocks share (0: as many as run).
  int64_t base_layers = 0;
  bool quant_linears = false, nf4_double_quant = true;
  bool dora = false;  // DoRA's weight norm: a targeted linear's f32 W + scale B A made per use
  // QAT: fake-quantised copies of every linear's input and weight (int4 after fp8 rows keeps the
  // rows too: 2 weight copies), kept for backward. The input copies are kept beside the inputs
  // (int8 and fp8 rows: their backward reads the input), or in their place (mxfp4's
  // straight-through op keeps nothing, so the linear keeps only the copy).
  // lm_head's too unless the scheme leaves it be (ternary: qat_head false).
  enum class QatInputs { none, beside, in_place };
  QatInputs qat_inputs = QatInputs::none;
  int qat_weights = 0;
  bool qat_head = false;
  void set_qat(const QatScheme& scheme) {
    const bool straight_through = scheme.input == QatScheme::Input::mxfp4 || scheme.input == QatScheme::Input::int8_absmax;
    qat_inputs = scheme.input == QatScheme::Input::none ? QatInputs::none
                 : straight_through                     ? QatInputs::in_place
                                                        : QatInputs::beside;
    qat_weights = !scheme.on() ? 0 : scheme.weight == QatScheme::Weight::int4_after_fp8 ? 2 : 1;
    qat_head = scheme.quantizes_head();
  }
  bool fp8 = false;   // fp8 casts of each block linear's input and weight, kept for backward
  double pruning_masks = 0;  // sparse fine-tuning: elements of the weights with a u8 mask
  QuantFormat quant_format = QuantFormat::nf4;  // of the block linears, with quant_linears
  bool frozen_lm_head = false;  // adapter runs that do not train lm_head: no d(lm_head)
  bool trains_embedding = false;  // adapter runs whose modules_to_save train the token embedding
  // Trainable token rows read by lm_head (its own, or a tied embedding's): the loss computes with an
  // f32 copy of the table holding them and forms the whole table's gradient in f32, as a trained lm_head's.
  bool head_token_rows = false;
  // ZeRO-3 of an adapter run (engine/frozen_shards.h): its slices of the frozen base in host
  // memory instead of the device's (fsdp_offload_params).
  bool offload_params = false;
  // ZeRO-3's prefetch (engine/weight_units.h): one block more gathered while another computes.
  bool forward_prefetch = true, backward_prefetch = true;
  bool merge_lora = false;  // ... and the whole base gathered at the end for the merged model
  // The device is the host (a CPU run): what start-up builds in host memory counts against it.
  bool on_cpu = false;
  AttentionKind attention = AttentionKind::eager;
};

// The keys of a config, at a world size and compute dtype that the config does not say.
MemoryPlanInput memory_plan_input(const TrainConfig& c, int64_t ranks, bool bf16, bool on_cpu = false);

struct MemoryItem {
  std::string name;   // e.g. "optimizer state"
  double bytes = 0;   // per rank
  std::string how;    // how it is made up, for the table
};

struct MemoryPlan {
  std::vector<MemoryItem> items;  // weights, master weights, gradients, optimizer state,
                                  // activations, logits/loss workspace, communication buckets
  double peak_bytes = 0;          // the most alive at once (not every item lives at the same time)
  std::string peak_when;          // which moment of the step that is
  const MemoryItem& largest() const;
};

MemoryPlan plan_memory(const MemoryPlanInput& in);

// The table: one line per item, then the peak, and, when available > 0, whether it fits.
std::string format_memory_plan(const MemoryPlan& plan, double available, const std::string& what);

}  // namespace llm
