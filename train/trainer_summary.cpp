// defines: Trainer::Impl::print_summary and print_adapter_summary (what a run says at start-up:
// model, device, batch, sharding, adapters, optimizer, memory plan, schedule), and mfu_text (the
// log line's MFU)
#include <fmt/core.h>

#include <algorithm>
#include <cmath>

#include "engine/backend.h"
#include "train/config_fields.h"
#include "train/trainer_impl.h"

namespace llm {

std::string Trainer::Impl::mfu_text(double tokens_per_s) const {
  if (peak_bf16_tflops <= 0) return "";
  const double flops_per_s = model->training_flops_per_token(config.data.sequence_len) * tokens_per_s / comm.world_size();
  return fmt::format(" | MFU {:.1f}%", 100.0 * flops_per_s / (peak_bf16_tflops * 1e12));
}

void Trainer::Impl::print_config_warnings() const {
  const TrainConfig& c = config;
  if (!c.unknown_keys.empty()) {
    std::string keys;
    for (const std::string& k : c.unknown_keys) {
      const std::optional<std::string> near = nearest_config_key(k);
      keys += (keys.empty() ? "" : ", ") + k + (near ? " (did you mean " + *near + "?)" : "");
    }
    say("warning: {}: keys not used by llm_train: {}\n", c.source, keys);
  }
  for (const std::string& a : c.adjustments) say("warning: {}: {}\n", c.source, a);
}

// What this run will do, in a few lines (rank 0).
void Trainer::Impl::print_summary() const {
  const TrainConfig& c = config;
  const LlamaConfig& m = c.model;
  say("config: {}\n", c.source);
  print_config_warnings();
  if (!c.speed_only_keys.empty()) {
    std::string keys;
    for (const std::string& k : c.speed_only_keys) keys += (keys.empty() ? "" : ", ") + k;
    say("{}: Axolotl's fused kernels, speed only: llm_train runs its own kernels, computing the same\n", keys);
  }
  say("model: {} | {} layers, hidden {}, heads {}/{} (q/kv), mlp {}, vocab {}, {} | {:.2f}M parameters\n",
             c.base_model, m.num_hidden_layers, m.hidden_size, m.num_attention_heads,
             m.num_key_value_heads, m.intermediate_size, m.vocab_size,
             m.num_labels > 0       ? fmt::format("a {} classifier: score head of {} label(s), no lm_head",
                                                  m.token_classification ? "token" : "sequence", m.num_labels)
             : m.tie_word_embeddings ? (c.unties_embeddings() ? "tied embeddings, untied for lora_modules_to_save"
                                                             : "tied embeddings")
                                     : std::string("untied embeddings"),
             c.run_parameters() / 1e6);
  say("tokenizer: {} | vocab {}, bos {}, eos {}, pad {}\n", tokenizer->name(), tokenizer->vocab_size(),
      tokenizer->bos(), tokenizer->eos(), tokenizer->pad());
  const bool bf16_compute = forward.compute_dtype == DType::bf16;
  say("device: {} | precision: {} (bf16: {}{}{})\n", device.str(),
      c.bfloat16     ? bf16_compute ? "bf16 weights, compute and AdamW moments, f32 gradients, no master copy"
                                    : "bf16 weights and AdamW moments, f32 compute and gradients, no master copy"
      : bf16_compute ? "bf16 compute, f32 master weights"
                     : "f32",
      c.bf16, c.bfloat16 ? ", bfloat16: true" : "",
      device.is_cpu() && (c.bf16 == "true" || c.bfloat16) ? "; the CPU computes in f32" : "");
  say("attention: {}{}{} | gradient_checkpointing: {}\n",
      c.diffusion.on ? "bidirectional (diffusion: the memory-efficient kernel, a document mask, positions along the row)"
                     : attention_info(c.attention_kernel()).label,
      c.attention == AttentionKind::s2
          ? fmt::format(", groups of {} tokens, in eval too as Axolotl's patch",
                        static_cast<int64_t>(c.data.sequence_len * c.s2_group_size_ratio))
          : "",
      !c.data.sample_packing || c.diffusion.on
          ? ""
          : fmt::format(" with sample packing ({}, {})",
                        c.packing_attends_across_documents() ? "no document mask, as Axolotl without an attention key"
                                                             : "document mask",
                        c.data.use_pose ? "each document's PoSE positions" : "positions restart per document"),
      c.gradient_checkpointing ? fmt::format("every {} layer(s){}", c.gradient_checkpointing_every_n_layers,
                                             !c.gradient_checkpointing_offload ? ""
                                             : device.is_cpu() ? ", offload (a CPU run's device is host memory already)"
                                                               : ", their inputs offloaded to host memory")
                               : "off");
  if (c.attention == AttentionKind::cudnn && device.is_cpu())
    say("sdp_attention: cuDNN is GPU-only; the CPU runs our flash tiles for it (the same math)\n");
  if (c.scaling_softmax)
    say("scaling_softmax: every query's scores times {} * log(n) + {} (n: its position + 1, at least 2), in "
        "training, evaluation and sampling\n", c.scaling_softmax_factor, c.scaling_softmax_bias);
  if (c.tf32 == "true" && device.is_cpu()) say("tf32: no effect on the CPU (its GEMMs are plain f32)\n");
  if (c.neftune_noise_alpha > 0)
    say("neftune_noise_alpha {}: uniform noise within +-{:.4g} on the embeddings of every training forward "
        "(alpha / sqrt(sequence x hidden) at sequence_len {}; shorter batches get more)\n",
        c.neftune_noise_alpha, c.neftune_noise_alpha / std::sqrt(double(c.data.sequence_len * m.hidden_size)),
        c.data.sequence_len);
  if (c.use_eaft)
    say("use_eaft: each target's loss weighted by H^{} (H: the entropy over its {} largest logits), in training and "
        "evaluation\n", c.eaft_alpha, c.eaft_k);
  if (c.use_dft)
    say("use_dft: each target's loss weighted by the probability of its target (DFT), in training and evaluation\n");
  if (c.data.use_pose)
    say("use_pose: training position ids skip ahead within a context of {} ({}){}\n", c.data.pose.max_context_len,
        c.data.pose.split_on_token_ids.empty() ? fmt::format("{} chunks", c.data.pose.chunks) : "before the split tokens",
        c.data.eval_sample_packing ? "; the eval rows' too" : "");
  if (c.qat.on() && c.qat.quantizes_head())
    say("qat: every linear layer and lm_head compute on {}, fake-quantised as torchao's{}; the trained weights are "
        "saved unquantised\n",
        describe_qat(c.qat),
        c.qat_fake_quant_after_n_steps > 0 ? fmt::format(", from step {} on", c.qat_fake_quant_after_n_steps + 1) : "");
  else if (c.qat.on())
    say("qat: every block linear layer computes on {}, as Axolotl's ternary QAT{} (lm_head and the embedding in full "
        "precision); {}\n",
        describe_qat(c.qat),
        c.qat_fake_quant_after_n_steps > 0 ? fmt::format(", from step {} on", c.qat_fake_quant_after_n_steps + 1) : "",
        c.adapter.empty() ? "the final model is saved with them ternary" : "the adapters are saved as trained");
  if (c.fp8) {
    int64_t cast = 0;
    for (int64_t layer = 0; layer < m.num_hidden_layers; layer++)
      for (int k = 0; k < kNumLinear; k++) cast += model->fp8_linear_at(layer, k);
    say("fp8: {} of {} block linears on e4m3 inputs and weights and e5m2 gradients (tensorwise scales, as torchao's "
        "Float8Linear; block 0's q_proj and lm_head stay {}, as accelerate keeps the first and last, and so does a "
        "width not a multiple of 16); the GEMMs run on the rounded values in {}, not on fp8 tensor cores\n",
        cast, m.num_hidden_layers * kNumLinear, dtype_name(forward.compute_dtype), dtype_name(forward.compute_dtype));
  }
  if (!pruning_masks.empty()) {
    double kept = 0, all = 0;
    for (const PruningMask& m : pruning_masks) {
      all += static_cast<double>(m.keep.numel());
      const Tensor keep = m.keep.to(Device::cpu());
      kept += static_cast<double>(std::count(keep.data<uint8_t>(), keep.data<uint8_t>() + keep.numel(), uint8_t{1}));
    }
    say("llmcompressor: ConstantPruningModifier keeps the zeros of {} weight tensors ({:.1f}% of their elements), "
        "re-applied after every step{}\n",
        pruning_masks.size(), 100.0 * (all - kept) / std::max(all, 1.0),
        c.save_compressed ? "; save_compressed: the export is dense (zeros written out), not compressed-tensors' format" : "");
  }
  print_data_summary();
  const int64_t global_batch = c.micro_batch_size * c.gradient_accumulation_steps * comm.world_size();
  const char* unit = preference() && !kto()                                ? "pairs"
                     : c.data.sample_packing && !c.data.multipack_real_batches ? "x sequence_len in bins"
                                                                               : "rows";
  say("batch: {} micro x {} accumulation x {} rank(s) = {} {} (at most {} tokens) per step\n",
      c.micro_batch_size, c.gradient_accumulation_steps, comm.world_size(), global_batch, unit,
      global_batch * c.data.sequence_len * (preference() ? 2 : 1));
  const char* units = m.tie_word_embeddings ? "the embedding (also lm_head) with the final norm; each decoder layer"
                                             : "the embedding; each decoder layer; the final norm with lm_head";
  if (sharded_weights)
    say("data parallel: {} ranks, ZeRO stage 3: {} units of weights gathered per use ({}), each one gradient "
        "bucket\n", comm.world_size(), buckets->buckets().size(), units);
  else if (frozen_shards)
    say("data parallel: {} ranks, ZeRO stage 3 of the frozen base: {} units gathered per use ({}), {:.3f} MiB "
        "of slices per rank{}; what trains as ZeRO-2 in {} gradient buckets of <= {} MB\n", comm.world_size(),
        model->frozen_units().size(), units,
        frozen_shards->slice_bytes() / 1048576.0, c.offload_params ? " in host memory (offload_params)" : "",
        buckets->buckets().size(), c.ddp_bucket_cap_mb);
  else if (buckets)
    say("data parallel: {} ranks, {} gradient buckets of <= {} MB, ZeRO stage {}\n", comm.world_size(),
        buckets->buckets().size(), c.ddp_bucket_cap_mb, c.zero_stage);
  if (sharded_start_rise >= 0) {
    size_t largest = 0;  // in f32, as drawn or read
    for (const BaseWeight& w : model->base_weights()) largest = std::max(largest, shape_nbytes(w.shape, DType::f32));
    say("ZeRO-3 start-up: each weight made whole on the host alone, each rank keeping its slices: host "
        "memory rose {:.3f} MiB above the shards at most, on any rank (the largest weight {:.3f} MiB, the "
        "whole f32 model {:.3f} MiB)\n", sharded_start_rise / 1048576.0, largest / 1048576.0,
        4.0 * static_cast<double>(m.num_parameters()) / 1048576.0);
  }
  if (sharded_weights || frozen_shards)
    say("ZeRO-3 prefetch (the next unit's all-gather while a unit computes): forward {}, backward {}\n",
        c.forward_prefetch ? "on" : "off", c.backward_prefetch ? "on" : "off");
  if (const LoraConfig* lora = model->lora()) print_adapter_summary(*lora);
  say("optimizer: {} | {} state {:.3f} MiB per rank ({:.3f} MiB unsharded)\n", optimizer->describe(),
      c.optimizer == "adopt_adamw"  ? "ADOPT"
      : c.optimizer == "adafactor" ? "Adafactor"
      : c.optimizer == "came_pytorch" ? "CAME"
      : c.optimizer_ademamix()     ? "AdEMAMix"
      : c.optimizer_lion()         ? "Lion"
      : c.optimizer_muon()         ? "Muon"
      : c.optimizer_schedule_free() ? "Schedule-Free"
      : c.optimizer_torchao()      ? "torchao AdamW " + torchao_codes_name(c.optimizer_torchao_codes())
      : c.optimizer_torch_optim()  ? "torch.optim " + c.optimizer
      : c.optimizer_galore()       ? "GaLore"
      : c.optimizer_qgalore()      ? "Q-GaLore"
      : c.optimizer_apollo()       ? "APOLLO"
      : c.optimizer == "stable_adamw" ? "StableAdamW"
      : c.optimizer == "grokadamw" ? "GrokAdamW"
      : c.optimizer == "lomo"      ? "LOMO"
      : c.optimizer == "adalomo"   ? "AdaLomo"
                                   : "AdamW",
      optimizer->state_bytes() / 1048576.0,
      optimizer->unsharded_state_bytes() / 1048576.0);
  if (c.loraplus_lr_ratio > 0)
    say("LoRA+: lora_B and 1-D tensors learn at {} x learning_rate, the rest at learning_rate; no weight decay "
        "(PEFT's loraplus_weight_decay, which Axolotl leaves 0)\n", c.loraplus_lr_ratio);
  const MemoryPlan memory =
      plan_memory(memory_plan_input(c, comm.world_size(), forward.compute_dtype == DType::bf16, device.is_cpu()));
  say("memory plan, per rank (llm_bench memory prints it for other sizes):\n{}",
      format_memory_plan(memory, static_cast<double>(memory_available), "available on " + device.str()));
  // FSDP's offload_params is built for what dominates an adapter run's memory, its frozen base
  // under ZeRO-3 (FrozenShards); anywhere else it is not, and the plan above counts the device.
  if (c.offload_params && !frozen_shards)
    say("warning: {}: fsdp_offload_params (or DeepSpeed's offload_param / offload_optimizer): offloading is built "
        "only for the frozen base of an adapter run "
        "under ZeRO-3 with several ranks; this run keeps its weights, gradients and optimizer state on {} "
        "(the memory plan above counts them there)\n", c.source, device.str());
  else if (c.offload_params && device.is_cpu())
    say("fsdp_offload_params: the frozen slices are in host memory, which on the CPU is the device\n");
  if (c.optimizer.rfind("paged_", 0) == 0)
    say("optimizer: {}: paging state to host memory is not done here; the same {} with {} state\n",
        c.optimizer, c.optimizer_lion() ? "Lion" : c.optimizer_ademamix() ? "AdEMAMix" : "AdamW",
        c.optimizer_8bit() ? "8-bit" : "f32");
  // Schedule-Free's AdamW and SGD warm up over TrainingArguments' warmup_steps on top of the schedule.
  const std::string own_warmup = c.optimizer_schedule_free() && c.optimizer != "schedule_free_radam"
                                     ? " (and Schedule-Free's own over " + std::to_string(plan.trainer_warmup_steps) + ")"
                                     : "";
  say("schedule: {} steps ({} per epoch), {} lr {:.3g}, warmup {}{}, eval every {}, save every {}, log every {}\n",
      plan.total_steps, plan.updates_per_epoch, c.lr_scheduler, c.learning_rate, schedule.warmup_steps, own_warmup,
      plan.eval_steps ? std::to_string(plan.eval_steps) : "-", plan.save_steps ? std::to_string(plan.save_steps) : "end",
      plan.logging_steps);
  if (load_best)
    say("load_best_model_at_end: the final model will be the best evaluation's checkpoint (eval_loss){}\n",
        c.load_best_model_at_end ? "" : ", as Axolotl sets it with early stopping");
  else if (c.load_best_model_at_end)
    say("warning: {}: load_best_model_at_end is off, as Axolotl sets it: it needs an eval set and save_steps and "
        "eval_steps both set (or per-epoch counts below one an epoch's share), save_steps a multiple of eval_steps "
        "(here eval every {}, save every {})\n", c.source, plan.eval_steps ? std::to_string(plan.eval_steps) : "-",
        plan.save_steps ? std::to_string(plan.save_steps) : "end");
  if (c.loss_watchdog_threshold > 0)
    say("loss watchdog: stop once the logged loss is above {} at {} step ends in a row\n", c.loss_watchdog_threshold,
        c.loss_watchdog_patience);
  if (!resumed_from.empty())
    say("resumed from {} at step {}: the most any rank read of model.bin and optimizer.bin {:.3f} MiB, host "
        "memory rising {:.3f} MiB at most during the restore\n", resumed_from, state.step, restore_read / 1048576.0,
        restore_rise / 1048576.0);
}

// The adapters, and what they save: trainable parameters and AdamW state against training every
// weight (two f32 moments per parameter).
void Trainer::Impl::print_adapter_summary(const LoraConfig& lora) const {
  std::string targets, saved;
  for (const std::string& t : lora.targets()) targets += (targets.empty() ? "" : ", ") + t;
  if (!lora.target_pattern.empty()) targets = "modules matching " + lora.target_pattern;
  for (const std::string& m : lora.modules_to_save) saved += (saved.empty() ? "" : ", ") + m;
  std::string token_rows;  // PEFT's trainable token rows, by table
  const auto rows_of = [&token_rows](const char* table, const std::vector<int64_t>& ids) {
    if (ids.empty()) return;
    std::string list;
    for (int64_t id : ids) list += (list.empty() ? "" : ", ") + std::to_string(id);
    token_rows += fmt::format("{}{} [{}]", token_rows.empty() ? "; trained rows: " : ", ", table, list);
  };
  rows_of(model->config().tie_word_embeddings ? "embed_tokens (the tied lm_head reads them)" : "embed_tokens",
          lora.embed_token_rows);
  rows_of("lm_head", lora.head_token_rows);
  for (size_t i = 0; i < lora.layers.size(); i++)
    targets += (i == 0 ? " of blocks " : ", ") + std::to_string(lora.layers[i]);
  std::string patterns;  // the modules with their own r or alpha
  for (const auto& [key, r] : lora.rank_pattern) patterns += fmt::format("{}r {} where {} matches", patterns.empty() ? "" : ", ", r, key);
  for (const auto& [key, alpha] : lora.alpha_pattern)
    patterns += fmt::format("{}alpha {} where {} matches", patterns.empty() ? "" : ", ", alpha, key);
  if (!patterns.empty()) targets += " (" + patterns + ")";
  if (const std::vector<std::string> unmatched = lora.unmatched_patterns(model->config().num_hidden_layers); !unmatched.empty()) {
    std::string keys;
    for (const std::string& k : unmatched) keys += (keys.empty() ? "" : ", ") + k;
    say("warning: lora_rank_pattern / lora_alpha_pattern keys matching no adapted module, ignored as PEFT ignores them: {}\n", keys);
  }
  int64_t trainable = 0, base = 0, frozen = 0;
  for (const ParamRef& p : params) trainable += p.tensor->numel();
  // Replicated blocks (peft_layer_replication) share their base's tensors: each counted once, as
  // PEFT's count of named_parameters does.
  std::vector<const Tensor*> counted;
  for (const ParamRef& p : model->parameters()) {
    const Tensor& t = *p.tensor;
    if (std::any_of(counted.begin(), counted.end(), [&t](const Tensor* c) { return t.defined() && c->shares_storage(t); }))
      continue;
    counted.push_back(&t);
    base += t.numel();
    if (!t.requires_grad()) frozen += t.numel();
  }
  LlamaConfig base_shape = model->config();
  base_shape.num_hidden_layers = config.lora.base_layers_used(config.model.num_hidden_layers);
  const int64_t all = base_shape.num_parameters();
  const int64_t quantized = all - base;  // the NF4 or int8 weights, which parameters() no longer holds
  frozen += quantized;
  const int64_t total = trainable + frozen;  // as PEFT's print_trainable_parameters counts
  say("adapter: {} r {}, alpha {} (scale {:.4g}), dropout {} on {}{}{} | trainable {} of {} parameters "
      "({:.3f}%), the base frozen in {}{}\n",
      config.adapter + (lora.use_dora ? " (DoRA)" : ""), lora.r, lora.alpha, lora.scale(), lora.dropout, targets,
      saved.empty() ? "" : "; trained whole: " + saved, token_rows, trainable, total, 100.0 * trainable / total,
      dtype_name(forward.compute_dtype), quantized > 0 ? fmt::format(", its block linears in {}", quant_format_name(config.base_format())) : "");
  if (quantized > 0) {
    const double dsize = static_cast<double>(dtype_size(forward.compute_dtype));
    const std::string how = config.load_in_8bit ? "8-bit int8 with an f32 scale per row"
                            : config.bnb_4bit_use_double_quant ? "4-bit NF4 with double-quantised absmax"
                                                               : "4-bit NF4";
    say("{}: {} block linear weights in {}: {:.3f} MiB instead of {:.3f} MiB in {} ({:.2f} bits per weight)\n",
        config.load_in_8bit ? "load_in_8bit" : "qlora", quantized, how, quant_bytes / 1048576.0,
        quantized * dsize / 1048576.0, dtype_name(forward.compute_dtype), 8.0 * quant_bytes / quantized);
    if (config.relora)
      say("relora: the block linears also kept in f32 in host memory ({:.3f} MiB): each restart merges into them "
          "and quantises them afresh, as Axolotl merges into its last full-weight save\n",
          4.0 * static_cast<double>(quantized) / 1048576.0);
  }
  // The same optimizer over every weight would keep about all / trainable times its state.
  const double ours = static_cast<double>(optimizer->unsharded_state_bytes());
  const double full = ours * static_cast<double>(all) / static_cast<double>(std::max<int64_t>(trainable, 1));
  // On a model smaller than its adapters (tests' tiny shapes at a large rank) it costs more.
  say("adapter: optimizer state {:.3f} MiB instead of {:.3f} MiB for every weight ({:.3f} MiB {})\n",
      ours / 1048576.0, full / 1048576.0, std::fabs(full - ours) / 1048576.0,
      full >= ours ? "saved" : "more: the adapters outnumber the weights");
}

}  // namespace llm
