// TrainConfig: an Axolotl-style YAML training config, resolved and validated. Keys keep
// Axolotl's names and meanings (see shared/reference/axolotl-llama3.md); load_config() reports
// bad input as a UserError naming the file, line, key and what was expected.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/qat_scheme.h"
#include "engine/quant_weight.h"
#include "engine/torchao_adamw_math.h"
#include "io/data_config.h"
#include "io/tokenizer.h"
#include "model/attention_kind.h"
#include "model/llama_config.h"
#include "model/lora.h"
#include "train/diffusion.h"

namespace llm {

struct TrainConfig {
  std::string source;  // the YAML file this came from ("<embedded tiny>" for the default)

  // Model.
  // A preset name, or an HF model directory (config.json + *.safetensors) whose weights the run
  // starts from.
  std::string base_model = "tiny";
  // Axolotl's revision_of_model: the branch, tag or commit a hub id in base_model or
  // tokenizer_config resolves to in the local Hugging Face cache (io/hf_hub_cache.h); empty: main.
  std::string revision_of_model;
  LlamaConfig model;  // the preset or config.json, then any HF field given directly
  bool base_model_is_preset() const { return llama_preset(base_model).has_value(); }
  // Axolotl's reinit_weights: base_model's architecture (and tokenizer) with fresh weights drawn
  // as transformers' from_config draws them (our draws), not its safetensors.
  bool reinit_weights = false;
  // Axolotl's base_model_config: the HF directory whose config.json (and, without
  // tokenizer_config, tokenizer) the run takes instead of base_model's; the weights stay
  // base_model's. Empty: base_model's own.
  std::string base_model_config;
  // Axolotl's tokenizer_config: a tiktoken ranks file, resolved from the path given (or from
  // base_model when that is a directory holding one). Empty: the byte tokenizer.
  std::string tokenizer_config;
  SpecialTokens special_tokens;  // Axolotl's special_tokens: bos/eos/pad_token by name
  AddedTokensOverrides added_tokens_overrides;  // Axolotl's: added token id -> its new name
  // Axolotl's tokens (io/added_tokens.h): added to the tokenizer; the embedding and lm_head grow
  // to the tokenizer's size (rounded up to a multiple of 32 with resize_token_embeddings_to_32x).
  std::vector<std::string> tokens;
  bool resize_token_embeddings_to_32x = false;
  // Axolotl's mean_resizing_embeddings (transformers' mean_resizing): the new rows start at the
  // mean of the old ones (transformers adds noise of covariance 1e-9 x theirs), not drawn.
  bool mean_resizing_embeddings = false;
  // Axolotl's shrink_embeddings: a base vocabulary larger than the tokenizer's (or its multiple of
  // 32) is cut to it, embed_tokens and lm_head keeping their first rows, as resize_token_embeddings.
  bool shrink_embeddings = false;
  // Axolotl's fix_untrained_tokens (train/untrained_tokens.h), and the ids its list names.
  bool fix_untrained_tokens = false;
  std::vector<int64_t> fix_untrained_token_ids;

  // Adapters: "lora" trains LoRA pairs (model/lora.h) on frozen base weights; "qlora" the same on
  // a base whose block linear weights are NF4 (engine/nf4.h); "" trains every weight.
  std::string adapter;
  bool load_in_4bit = false;  // Axolotl: qlora requires it, and it means qlora here
  // adapter: lora on a base whose block linear weights are LLM.int8's row-wise int8 (engine/int8.h)
  bool load_in_8bit = false;
  // bnb_config_kwargs' bnb_4bit_use_double_quant: the NF4 absmax in 8 bits (Axolotl's QLoRA
  // default); its bnb_4bit_quant_type is nf4, the one 4-bit type built.
  bool bnb_4bit_use_double_quant = true;
  bool quantized_base() const { return load_in_4bit || load_in_8bit; }
  // PEFT's modules_to_save on a tied model without ensure_weight_tying: each listed module (the
  // embedding, lm_head) trains as a copy of its own, so the model trains untied, lm_head starting
  // as the tied table (LlamaModel::untie_embeddings); model keeps the base's tie.
  bool unties_embeddings() const {
    return !adapter.empty() && model.tie_word_embeddings && !lora.ensure_weight_tying &&
           (lora.saves("embed_tokens") || lora.saves("lm_head"));
  }
  // The parameters the run's model holds: the base's, and lm_head's copy where it unties.
  int64_t run_parameters() const {
    return model.num_parameters() + (unties_embeddings() ? model.vocab_size * model.hidden_size : 0);
  }
  QuantFormat base_format() const { return load_in_8bit ? QuantFormat::int8 : QuantFormat::nf4; }
  LoraConfig lora;             // lora_r, lora_alpha, lora_dropout, lora_target_*, ..._to_save
  std::string lora_model_dir;  // a PEFT adapter directory the adapters start from
  bool merge_lora = false;     // at the end, also output_dir/merged: base + adapters merged
  // LoRA+ (Axolotl's loraplus_lr_ratio, PEFT's create_loraplus_optimizer): lora_B matrices and
  // 1-D trained tensors take learning_rate x this ratio, and, as Axolotl calls PEFT's optimizer,
  // no tensor takes weight decay; < 0: off. loraplus_lr_embedding is the rate of LoRA embedding
  // layers, which are not built here, so it changes nothing.
  double loraplus_lr_ratio = -1;
  double loraplus_lr_embedding = 1e-6;
  // ReLoRA (Axolotl's relora, its ReLoRACallback; train/relora.h): before each step that follows
  // a multiple of jagged_restart_steps, the adapters are merged into the base and drawn afresh,
  // and their AdamW moments pruned by relora_prune_method (magnitude, random or reset) at
  // relora_prune_ratio (< 0: 0.9, or 0.999 for reset).
  bool relora = false;
  std::string relora_prune_method = "magnitude";
  double relora_prune_ratio = -1;
  // Axolotl's jagged learning-rate restarts (engine/lr_schedule.h), with ReLoRA or alone:
  // the period (0: off), and the re-warmup and anneal steps (0 or less: Axolotl's 10 and 1).
  int64_t jagged_restart_steps = 0;
  int64_t jagged_restart_warmup_steps = 0, jagged_restart_anneal_steps = 0;

  // Preference training (Axolotl's rl; train/preference_loss.h): "" (supervised), dpo, ipo or simpo
  // on the pairs of preference datasets (io/preference.h), orpo on ORPO's (io/orpo.h), or kto on
  // the labelled completions of KTO datasets (io/kto.h). rl_beta: their beta (TRL's default 0.1); dpo_label_smoothing:
  // conservative DPO's share of flipped labels (rl: dpo only).
  std::string rl;
  double rl_beta = 0.1;
  double dpo_label_smoothing = 0;
  double rpo_alpha = -1;  // RPO's weight of the chosen responses' NLL (TRL's rpo_alpha); < 0: none
  // Axolotl's dpo_norm_loss: DPO's loss on log-likelihoods averaged over each response's tokens, as
  // IPO's (its AxolotlDPOTrainer runs TRL's forward as for ipo).
  bool dpo_norm_loss = false;
  // Axolotl's dpo_use_weighting (TRL's use_weighting): WPO's weight on each pair's loss
  // (train/preference_loss.h wpo_weight).
  bool dpo_use_weighting = false;
  // Axolotl's dpo_loss_type and dpo_loss_weights (rl: dpo; TRL's loss_type list): each pair's loss
  // the weighted sum of sigmoid (DPO's), ipo and sft (the chosen responses' NLL) terms; empty:
  // rl's own single loss.
  std::vector<std::string> dpo_loss_type;
  std::vector<double> dpo_loss_weights;
  // simpo (TRL's CPOTrainer with loss_type simpo): its target margin (TRL's default 0.5), and CPO's
  // weight of the chosen responses' NLL (TRL's default 1; 0: plain SimPO).
  double simpo_gamma = 0.5, cpo_alpha = 1;
  // Axolotl's orpo_alpha: rl: orpo's beta (its odds-ratio weight) unless rl_beta or trl.beta is
  // given; < 0: unset.
  double orpo_alpha = -1;
  // KTO's weights of the desirable and the undesirable rows' losses (TRL's default 1 each).
  double kto_desirable_weight = 1, kto_undesirable_weight = 1;
  // Axolotl's reward_model: a Bradley-Terry reward model (TRL's RewardTrainer) on the pairs of
  // bradley_terry.chat_template datasets (io/bradley_terry.h): the model a sequence classifier with
  // one label (LlamaConfig::num_labels), each pair's loss -log sigmoid(r_chosen - r_rejected).
  bool reward_model = false;
  // TRL's RewardConfig center_rewards_coefficient (Axolotl passes it): each pair's loss plus this
  // times (r_chosen + r_rejected)^2, pulling the scores toward zero mean. 0: none.
  double center_rewards_coefficient = 0;
  // Axolotl's process_reward_model: a process reward model (TRL's PRMTrainer) on stepwise_supervised
  // rows (io/stepwise_supervised.h): a token classifier of two labels (LlamaConfig::
  // token_classification), each reasoning step's label at its last token.
  bool process_reward_model = false;

  // fp8 training (Axolotl's fp8: torchao's Float8Linear; model/llama.h's ForwardOptions::fp8).
  bool fp8 = false;

  // Diffusion LM training (Axolotl's DiffusionPlugin and its `diffusion:` map; train/diffusion.h).
  DiffusionSettings diffusion;

  // Sparse fine-tuning (Axolotl's llmcompressor: recipe with a ConstantPruningModifier;
  // train/constant_pruning.h): the trained weights these targets name keep their starting zeros.
  // Empty: off. save_compressed is accepted; the export stays dense.
  std::vector<std::string> pruning_targets;
  bool save_compressed = false;

  // LISA (Axolotl's lisa_n_layers, lisa_step_interval; train/lisa.h): every lisa_step_interval
  // steps, lisa_n_layers decoder layers drawn as Axolotl draws them train, the others wait; the
  // embedding, final norm and lm_head always train. < 0: unset (off unless both are set).
  int64_t lisa_n_layers = -1, lisa_step_interval = -1;
  bool lisa() const { return lisa_n_layers > 0 && lisa_step_interval > 0; }

  // Quantisation-aware training (Axolotl's qat; model/llama.h's ForwardOptions::qat): what every
  // linear layer, lm_head included but under ternary, computes on (engine/qat_scheme.h); off unless set. Fake
  // quantisation starts after qat_fake_quant_after_n_steps optimizer steps (0: from the first).
  QatScheme qat;
  int64_t qat_fake_quant_after_n_steps = 0;
  bool qat_active(int64_t steps_done) const { return qat.on() && steps_done >= qat_fake_quant_after_n_steps; }

  // NEFTune (Axolotl's neftune_noise_alpha, or its older noisy_embedding_alpha): uniform noise
  // on the embeddings while training, magnitude alpha / sqrt(sequence x hidden); <= 0: none.
  double neftune_noise_alpha = -1;

  // EAFT (Axolotl's use_eaft, eaft_alpha, eaft_k; engine/ops.h's TokenWeighting): every token's
  // loss, in training and evaluation, weighted by H^eaft_alpha, H the entropy over its k largest
  // logits.
  bool use_eaft = false;
  double eaft_alpha = 1.0;
  int64_t eaft_k = 20;
  // DFT (Axolotl's use_dft, or its DFT plugin's enable_dft_loss): every token's loss, in training
  // and evaluation, weighted by the probability of its target.
  bool use_dft = false;

  // Axolotl's unfrozen_parameters (train/unfrozen_parameters.h): a full fine-tuning run trains only
  // the weights a pattern matches; empty: every weight trains.
  std::vector<std::string> unfrozen_parameters;
  // Axolotl's Spectrum plugin (train/config_spectrum.h) sets unfrozen_parameters from a model's
  // SNR scan: this share of each weight kind, the scan of this model (empty: base_model's).
  double spectrum_top_fraction = 0.5;
  std::string spectrum_model_name;

  // Data: datasets, dataset_prepared_path, val_set_size, sample_packing, sequence_len.
  DataConfig data;

  // Training.
  bool auto_find_batch_size = false;  // HF's: a smaller micro_batch_size when the plan does not fit
  int64_t micro_batch_size = 1;
  int64_t eval_batch_size = -1;  // Axolotl's: rows per eval micro-batch (unset: micro_batch_size)
  int64_t eval_micro_batch_size() const { return eval_batch_size > 0 ? eval_batch_size : micro_batch_size; }
  int64_t gradient_accumulation_steps = 1;
  // HF's average_tokens_across_devices, which Axolotl's builder always sets false: each rank
  // divides its token losses by its own target count and DDP averages the ranks' gradients. True
  // (HF's default): one division by every rank's targets.
  bool average_tokens_across_devices = false;
  double num_epochs = 1;  // HF's num_train_epochs: a fraction trains ceil(num_epochs x steps per epoch)
  int64_t max_steps = -1;  // > 0 overrides num_epochs
  // Axolotl's keys beside pretraining_dataset (data.pretraining; train/config_pretraining.cpp).
  bool streaming = false, pretraining_sample_concatenation = false, pretrain_multipack_attn = true;
  // The Trainer's DataLoader options (-1: unset). Only a stream's order depends on them: Axolotl
  // iterates it in dataloader workers, by default (none of the three given) one per GPU of the node.
  int64_t dataloader_num_workers = -1, dataloader_prefetch_factor = -1;
  int dataloader_pin_memory = -1;
  int64_t dataloader_workers(int gpus) const {
    if (dataloader_num_workers >= 0) return dataloader_num_workers;
    return dataloader_prefetch_factor < 0 && dataloader_pin_memory < 0 ? gpus : 0;
  }
  double learning_rate = 3e-4;
  std::string lr_scheduler = "cosine";  // HF's schedule names (engine/lr_schedule.h)
  int64_t warmup_steps = -1;            // -1: from warmup_ratio, else Axolotl's default
  double warmup_ratio = -1.0;
  double cosine_min_lr_ratio = 0.0;
  double cosine_constant_lr_ratio = 0.0;  // Axolotl's: cosine reaches the floor at this share of the steps
  bool lr_quadratic_warmup = false;       // Axolotl's, with cosine: warmup by (step / warmup)^2
  // lr_scheduler_kwargs, HF's scheduler arguments (train/config_scheduler.cpp, engine/lr_schedule.h):
  // numbers < 0 and empty strings unset.
  struct SchedulerKwargs {
    double num_cycles = -1, power = -1, lr_end = -1, timescale = -1;
    double min_lr = -1, min_lr_rate = -1, warmup_lr_rate = -1;  // the min-lr cosines'
    double min_lr_ratio = -1, num_stable_steps = -1, num_decay_steps = -1;  // warmup_stable_decay's
    std::string warmup_type, decay_type;                                    // its shapes
    // one_cycle's (torch's OneCycleLR arguments)
    double pct_start = -1, div_factor = -1, final_div_factor = -1, base_momentum = -1, max_momentum = -1;
    std::string anneal_strategy;
    // reduce_lr_on_plateau's (torch's ReduceLROnPlateau arguments; min_lr above is its floor)
    double factor = -1, patience = -1, threshold = -1, cooldown = -1, eps = -1;
    std::string mode, threshold_mode;
    std::optional<bool> three_phase, cycle_momentum;
  } lr_scheduler_kwargs;
  // adamw_torch | adamw_torch_fused | adamw | paged_adamw_32bit: one f32 AdamW; adamw_8bit |
  // adamw_bnb_8bit | paged_adamw_8bit: bitsandbytes' blockwise 8-bit state (optimizer_8bit());
  // adopt_adamw: ADOPT (engine/adopt.h), its betas and eps resolved by the config; lion_32bit |
  // paged_lion_32bit | lion_8bit | paged_lion_8bit: bitsandbytes' Lion (engine/lion.h) with the Adam
  // betas, its momentum f32 or 8-bit; adafactor: transformers' Adafactor (engine/adafactor.h);
  // ademamix | ademamix_8bit | paged_ademamix_32bit | paged_ademamix_8bit: bitsandbytes'
  // AdEMAMix (engine/ademamix.h); muon: Axolotl's Muon (engine/muon.h), betas and eps resolved by
  // the config; optimi_adamw: torch-optimi's AdamW (AdamW's update, its own default betas and eps);
  // adamw_torch_8bit | adamw_torch_4bit | ao_adamw_fp8: torchao's AdamW8bit / AdamW4bit /
  // AdamWFp8 (engine/torchao_adamw.h);
  // sgd | adagrad | rmsprop: torch.optim's (engine/torch_optim.h), their settings from optim_args;
  // stable_adamw: torch-optimi's StableAdamW (engine/stable_adamw.h), max_lr and decouple_lr from
  // optim_args; grokadamw: the grokadamw package's GrokAdamW (engine/grokadamw.h), its settings
  // from optim_args;
  // galore_adamw | galore_adamw_8bit | galore_adafactor: galore_torch's GaLore (engine/galore.h) over
  // optim_target_modules, its rank, update_proj_gap, scale and proj_type from optim_args;
  // galore_adamw_layerwise | galore_adamw_8bit_layerwise: the same stepped in backward;
  // q_galore_adamw8bit: Axolotl's Q-GaLore (engine/galore.h), its settings from the qgalore_* keys;
  // apollo_adamw | apollo_adamw_layerwise: apollo_torch's APOLLO (engine/apollo.h) over
  // optim_target_modules, its rank, proj, scale_type, update_proj_gap, scale and proj_type from
  // optim_args; the layer-wise one stepped in backward;
  // lomo: lomo_optim's LOMO (engine/lomo.h), SGD in backward; adalomo: its AdaLomo
  // (engine/adafactor.h), Adafactor in backward at a rate scaled by each parameter's RMS.
  std::string optimizer = "adamw_torch";
  // optim_args (HF's "key=value,..." or a map): AdEMAMix's beta1, beta2, beta3, alpha, eps,
  // t_alpha and t_beta3, which transformers reads for it; Muon's momentum, nesterov (0 or 1) and
  // ns_steps, which Axolotl's Muon reads; other optimizers take none.
  std::map<std::string, double> optim_args;
  double optim_arg(const std::string& key, double otherwise) const {
    const auto it = optim_args.find(key);
    return it == optim_args.end() ? otherwise : it->second;
  }
  // optim_target_modules (GaLore's and APOLLO's): the linear modules whose weights they project, matched as
  // transformers matches them (a module name equal to an entry, holding it, or matching it whole
  // as a regular expression); optim_target_all_linear: Axolotl's all_linear, every linear (the
  // block linears and an untied lm_head).
  std::vector<std::string> optim_target_modules;
  bool optim_target_all_linear = false;
  // Axolotl's qgalore_* keys (optimizer: q_galore_adamw8bit; train/config_qgalore.cpp), at its
  // defaults; qgalore_proj_type must be std.
  struct QGaloreKeys {
    int64_t rank = 256, update_proj_gap = 200;
    double scale = 0.25;
    bool proj_quant = true;
    int64_t proj_bits = 4, proj_group_size = 256;
    double cos_threshold = 0.4;
    int64_t gamma_proj = 2, queue_size = 5;
  } qgalore;
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_epsilon = 1e-8;
  double adam_beta3 = 0.9999, adam_epsilon2 = 1e-16;  // CAME's instability rate and its epsilon
  double weight_decay = 0.0;
  // Axolotl's optimizer groups (its create_optimizer_grouped_parameters; train/optimizer_groups.h):
  // set any and the embed_tokens / lm_head tensors take no weight decay and learn at
  // learning_rate x embedding_lr_scale, or at embedding_lr; a decayed tensor whose name holds
  // one of an lr_groups entry's modules learns at that entry's lr. < 0 / empty: unset.
  double embedding_lr_scale = -1;
  double embedding_lr = -1;
  struct LrGroup {
    std::string name;
    std::vector<std::string> modules;  // substrings of parameter names
    double lr = 0;
  };
  std::vector<LrGroup> lr_groups;
  // Axolotl's create_optimizer groups whenever one of these is set, and always for its own
  // optimizer classes (adopt_adamw, optimi_adamw, adamc, came_pytorch: the Trainer gets them as
  // optimizer_cls_and_kwargs).
  bool grouped_optimizer() const {
    return embedding_lr_scale > 0 || embedding_lr > 0 || !lr_groups.empty() || optimizer == "adopt_adamw" ||
           optimizer == "optimi_adamw" || optimizer == "adamc" || optimizer == "came_pytorch" ||
           optimizer == "ao_adamw_fp8";
  }
  double max_grad_norm = 1.0;
  uint64_t seed = 42;
  std::string bf16 = "auto";  // auto | true | false
  // Axolotl's bfloat16: weights (and AdamW's moments) kept in bf16 only, no f32 master copy;
  // gradients f32. Computes in bf16 on a GPU whatever bf16 says (train/config_precision.cpp).
  bool bfloat16 = false;
  std::string tf32 = "false";  // false | true | auto
  std::string device = "auto";  // auto | cpu | cuda

  // Evaluation and early stopping.
  // eval_steps / save_steps as HF reads them: a whole number of steps, or below 1 a share of the
  // total steps (ceil(share x total)); -1: from evals_per_epoch / saves_per_epoch.
  double eval_steps = -1;
  int64_t evals_per_epoch = -1;
  // HF's: steps (by the keys above) | epoch | no. Unset: Axolotl's choice, steps when a step or
  // per-epoch count is given, else epoch (every epoch's end, and the run's end).
  std::string eval_strategy;
  int64_t early_stopping_patience = -1;  // -1: off
  double early_stopping_threshold = 0.0;
  // HF's: the final model is the best evaluation's checkpoint (train/best_model.h says when;
  // early stopping asks for it too). The metric is eval_loss, lower better.
  bool load_best_model_at_end = false;
  // metric_for_best_model given: HF's Trainer then tracks best_model_checkpoint at every save even
  // without load_best_model_at_end, and its rotation keeps that checkpoint.
  bool tracks_best_checkpoint = false;
  // Axolotl's loss watchdog: stop once the logged training loss has been above the threshold at
  // `patience` step ends in a row (0: off).
  double loss_watchdog_threshold = 0.0;
  int64_t loss_watchdog_patience = 3;

  // Checkpoints.
  std::string output_dir = "./out";
  double save_steps = -1;  // as eval_steps
  int64_t saves_per_epoch = -1;
  std::string save_strategy;  // as eval_strategy; with no, the last step is still saved
  int64_t save_total_limit = 4;
  std::string resume_from_checkpoint;  // a checkpoint directory
  bool auto_resume_from_checkpoints = false;
  // HF's: a new run (no resume) may write over the checkpoints an earlier run left in output_dir;
  // without it such a run stops before writing anything.
  bool overwrite_output_dir = false;
  bool save_first_step = false;  // Axolotl's: a checkpoint after step 1 too, to check saving early
  // HF's: checkpoints without the optimizer's state (resuming from them is refused), but for the
  // ones a stop signal or the loss watchdog writes.
  bool save_only_model = false;

  // Logging.
  int64_t logging_steps = -1;  // -1: Axolotl's default max(min(int(0.005 * total), 10), 1)
  // Axolotl's include_tkps: supervised fine-tuning's records carry the trainable tokens so far
  // (tokens/trainable) and their rate per GPU since the last record (tokens/train_per_sec_per_gpu).
  bool include_tkps = true;
  bool use_tensorboard = false;  // Axolotl's: the log records as TensorBoard scalars too (train/metrics.h)

  // Optimisations: attention implementation and activation recompute.
  bool gradient_checkpointing = false;
  // gradient_checkpointing: offload (Axolotl's): the recompute segments' inputs in host memory.
  bool gradient_checkpointing_offload = false;
  int64_t gradient_checkpointing_every_n_layers = 1;  // gradient_checkpointing_kwargs (ours)
  // flash_attention, xformers_attention, s2_attention, sdp_attention or attn_implementation.
  AttentionKind attention = AttentionKind::eager;
  double s2_group_size_ratio = 0.25;
  // SSMax (Axolotl's scaling_softmax): every query's scores times factor * log(n) + bias, n its
  // position + 1 (model/llama.h ForwardOptions::ssmax); 0 for the factor or bias is Axolotl's
  // default (its `or 0.43`, `or 0.0`).
  bool scaling_softmax = false;
  float scaling_softmax_factor = 0.43f, scaling_softmax_bias = 0.0f;
  int local_rank = -1;  // -1: from MPI / the environment
  // Axolotl's Ray launch: ray_num_workers data-parallel workers. mpirun starts the ranks here; the
  // trainer refuses a run whose rank count differs, as its global batch would.
  bool use_ray = false;
  int64_t ray_num_workers = 1;

  // Distributed data parallel (mpirun): gradient bucket size, and ZeRO stage 1 (AdamW state
  // sharded across ranks: reduce-scatter of gradients, all-gather of updated parameters).
  double ddp_bucket_cap_mb = 25.0;
  // 0 | 1 | 2 (gradients reduce-scattered and kept as this rank's slices) | 3 (weights too)
  int64_t zero_stage = 0;
  // Axolotl's `deepspeed:` a DeepSpeed JSON config, of which zero_optimization.stage is read (it
  // sets zero_stage); the stage it gave, -1 without one.
  std::string deepspeed;
  int64_t deepspeed_stage = -1;
  int64_t fsdp_stage = -1;  // the stage Axolotl's fsdp / fsdp_config set (3 or 2), -1: none
  // FSDP's offload_params (fsdp_config.fsdp_offload_params, `offload` in fsdp, or a DeepSpeed
  // config's offload_param / offload_optimizer): under ZeRO-3
  // with an adapter the frozen base's slices live in host memory (engine/frozen_shards.h); any
  // other run keeps everything on its device and says so at start-up.
  bool offload_params = false;
  // FSDP's forward_prefetch and backward_prefetch (fsdp_config): under ZeRO-3 the next unit's
  // all-gather starts while this unit computes (engine/weight_units.h). On unless turned off
  // (fsdp_forward_prefetch: false, fsdp_backward_prefetch: NO_PREFETCH); results are the same.
  bool forward_prefetch = true, backward_prefetch = true;

  std::vector<std::string> unknown_keys;  // warned about once, never an error
  // Values the parser changed as Axolotl changes them (each said once at start-up).
  std::vector<std::string> adjustments;
  std::vector<std::string> speed_only_keys;  // Axolotl's kernel switches set true: named at start-up

  // sample_packing with no attention key (train/config.cpp): the rows' examples attend across
  // each other, as Axolotl's transformers default attention over its packed rows.
  bool packing_attends_across_documents() const { return data.sample_packing && attention == AttentionKind::eager; }
  // The attention that runs: there, flash's causal attention over the whole row (what eager
  // computes, without its S x S scores); else the one chosen.
  AttentionKind attention_kernel() const { return packing_attends_across_documents() ? AttentionKind::flash : attention; }
  bool optimizer_8bit() const {
    return optimizer.size() > 5 && optimizer.compare(optimizer.size() - 5, 5, "_8bit") == 0;
  }
  bool optimizer_lion() const { return optimizer.find("lion") != std::string::npos; }
  bool optimizer_ademamix() const { return optimizer.find("ademamix") != std::string::npos; }
  bool optimizer_muon() const { return optimizer == "muon"; }
  bool optimizer_schedule_free() const { return optimizer.rfind("schedule_free_", 0) == 0; }
  // torchao's AdamW8bit, AdamW4bit or (Axolotl's ao_adamw_fp8) AdamWFp8, its codes as
  // optimizer_torchao_codes() says.
  bool optimizer_torchao() const {
    return optimizer == "adamw_torch_8bit" || optimizer == "adamw_torch_4bit" || optimizer == "ao_adamw_fp8";
  }
  TorchaoCodes optimizer_torchao_codes() const {
    return optimizer == "adamw_torch_4bit" ? TorchaoCodes::dynamic_4bit
           : optimizer == "ao_adamw_fp8"   ? TorchaoCodes::fp8
                                           : TorchaoCodes::dynamic_8bit;
  }
  // torch.optim's SGD, Adagrad or RMSprop, as transformers builds them (engine/torch_optim.h).
  // bitsandbytes' RMSprop (rmsprop_bnb, rmsprop_bnb_32bit, rmsprop_bnb_8bit) is torch's update.
  bool optimizer_torch_optim() const {
    return optimizer == "sgd" || optimizer == "adagrad" || optimizer == "rmsprop" || optimizer_bnb_rmsprop();
  }
  bool optimizer_bnb_rmsprop() const { return optimizer.rfind("rmsprop_bnb", 0) == 0; }
  bool optimizer_galore() const {
    const std::string base = optimizer_per_parameter();
    return base == "galore_adamw" || base == "galore_adamw_8bit" || base == "galore_adafactor";
  }
  bool optimizer_apollo() const { return optimizer_per_parameter() == "apollo_adamw"; }
  // q_galore_adamw8bit: Axolotl's Q-GaLore (q-galore-torch 1.0, engine/galore.h with quantised
  // bases and an adaptive gap) over the parameters optim_target_modules name.
  bool optimizer_qgalore() const { return optimizer == "q_galore_adamw8bit"; }
  // GaLore, APOLLO or Q-GaLore: a gradient projection over optim_target_modules
  // (engine/low_rank_optimizer.h).
  bool optimizer_low_rank() const { return optimizer_galore() || optimizer_apollo() || optimizer_qgalore(); }
  // transformers' GaLore and APOLLO, whose groups take no weight_decay.
  bool optimizer_transformers_low_rank() const { return optimizer_galore() || optimizer_apollo(); }
  // galore_*_layerwise, apollo_adamw_layerwise: transformers' layer-wise GaLore and APOLLO, one
  // optimizer a parameter stepped in backward as soon as that parameter's gradient is complete
  // (engine/optimizer.h's updates_in_backward and pass_updates), so the gradients are never all
  // held at once.
  bool optimizer_layerwise() const {
    return optimizer.size() > kLayerwise.size() &&
           optimizer.compare(optimizer.size() - kLayerwise.size(), kLayerwise.size(), kLayerwise) == 0;
  }
  // The optimizer each parameter runs: `optimizer` less a _layerwise suffix.
  std::string optimizer_per_parameter() const {
    return optimizer_layerwise() ? optimizer.substr(0, optimizer.size() - kLayerwise.size()) : optimizer;
  }
  static constexpr std::string_view kLayerwise = "_layerwise";
  // torch's AdamW with f32 (or bf16) moments: not 8-bit, not optimi's (its moments debiased, its
  // bf16 update Kahan-summed), not AdamC (its bf16 update rounded op by op); what bfloat16 and
  // ReLoRA take.
  bool optimizer_torch_adamw() const {
    return optimizer_adamw() && !optimizer_8bit() && optimizer != "optimi_adamw" && optimizer != "adamc";
  }
  // AdamW (f32 or bitsandbytes' 8-bit state, or AdamC's decay): what ZeRO shards; not ADOPT, Lion,
  // Adafactor, CAME, AdEMAMix, Muon, Schedule-Free, torchao's quantised AdamWs, torch's SGD,
  // Adagrad and RMSprop, GaLore, APOLLO, StableAdamW, GrokAdamW, LOMO or AdaLomo.
  bool optimizer_adamw() const {
    return optimizer != "adopt_adamw" && optimizer != "adafactor" && optimizer != "came_pytorch" && !optimizer_lion() &&
           !optimizer_ademamix() && !optimizer_muon() && !optimizer_schedule_free() && !optimizer_torchao() &&
           !optimizer_torch_optim() && !optimizer_low_rank() && optimizer != "stable_adamw" && optimizer != "grokadamw" &&
           !optimizer_lomo();
  }
  // lomo | adalomo: lomo_optim's optimizers, updating in every micro-batch's backward.
  bool optimizer_lomo() const { return optimizer == "lomo" || optimizer == "adalomo"; }
};

// The text of the config file `path`; a UserError naming it when it is no readable regular file
// (a directory, a FIFO, which would block, or none).
std::string read_config_file(const std::string& path);
// Reads and validates `path`, then applies `overrides` (top-level key -> YAML scalar text, from
// `--key value` on the command line). Throws UserError on bad input.
TrainConfig load_config(const std::string& path, const std::map<std::string, std::string>& overrides = {});
// The same from YAML text; `source` names it in messages.
TrainConfig parse_config(const std::string& yaml_text, const std::string& source,
                         const std::map<std::string, std::string>& overrides = {});
// The resolved config as YAML (written into every checkpoint; parse_config reads it back).
std::string config_to_yaml(const TrainConfig& config);
// The first line config_to_yaml writes: a config holding it is one llm_train resolved (a
// checkpoint's), which Axolotl's checks on what a person wrote do not apply to.
inline constexpr const char* kResolvedConfigHeader = "# llm_train config, resolved";
// The config a checkpoint keeps: without the resume keys, and with output_dir and the token
// cache's directory absolute (as the config's files are), so `--resume` from another directory
// goes on writing where the run wrote.
TrainConfig config_to_save(const TrainConfig& config);
// The top-level keys whose values differ between two configs config_to_yaml wrote (a key the
// saved one lacks, written before that key existed, is not counted), values as one-line YAML.
struct ConfigChange {
  std::string key, saved, now;
};
std::vector<ConfigChange> config_changes(const std::string& saved_yaml, const std::string& now_yaml);

// Every top-level key the parser knows, in config_to_yaml's order, for documentation and help.
struct ConfigKey {
  std::string name;
  std::string type;           // the value it takes, as error messages say it
  std::string default_value;  // as YAML; "unset" when it has none
  std::string meaning;        // one line
};
std::vector<ConfigKey> config_keys();

// What a qat scheme computes on, for the start-up summary: "int8 inputs (per token) and int4
// weights (groups of 32)" (train/config_qat.cpp).
std::string describe_qat(const QatScheme& scheme);

}  // namespace llm
