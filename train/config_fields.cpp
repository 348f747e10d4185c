// defines: config_fields, find_config_field (the config's field table), config_keys
#include "io/chat_template.h"  // chat_template_choices
#include "train/config_field_builders.h"
#include "train/config_fields.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <type_traits>

namespace llm {
namespace {

using namespace field_builders;


constexpr int64_t kMaxEpochs = int64_t(1) << 20;  // num_epochs x updates per epoch = total steps

void read_val_set_size(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  double v = read_double(n, w, kNonNegative);
  if (v >= 1 && v != std::floor(v)) fail(w, "a fraction < 1 or a whole count", describe(n));
  ctx.config.data.val_set_size = v;
}

// tf32 (and bf16, train/config_precision.cpp): true, false, or auto (what the GPU has: sm_80+).
ConfigField bool_or_auto(const char* key, const char* section, std::string TrainConfig::*member, const char* meaning) {
  return {key, section, "true or false or auto", meaning,
          [member](ReadContext& ctx, const YAML::Node& n, const Where& w) {
            ctx.config.*member = n.IsScalar() && n.Scalar() == "auto" ? "auto" : read_bool(n, w, " or auto") ? "true" : "false";
          },
          [member](const TrainConfig& c) { return yaml_string(c.*member); }};
}

std::vector<ConfigField> make_fields() {
  const char* model = "Model";
  const char* adapters = "Adapters";
  const char* data = "Data";
  const char* training = "Training";
  const char* eval = "Evaluation and early stopping";
  const char* checkpoints = "Checkpoints and logging";
  const char* optimisations = "Optimisations";
  const std::string base_model_expected =
      "a preset (" + join(llama_preset_names()) + ") or an HF model directory";
  std::vector<ConfigField> rows = {
      // Read before base_model and tokenizer_config, which resolve hub ids at this revision; never
      // written, as they record the snapshot directory they resolved to.
      {"revision_of_model", model, "a non-empty string",
       "branch, tag or commit of a hub id in base_model / tokenizer_config (unset: main)", read_revision, nullptr},
      {"model_revision", model, "a non-empty string", "Axolotl's other name of revision_of_model", read_revision,
       nullptr},
      {"base_model", model, base_model_expected,
       "the model's preset, or an HF directory (config.json + safetensors; or a hub id already in the local "
       "HF cache) to start from",
       read_base_model, [](const TrainConfig& c) { return yaml_string(c.base_model); }},
      {"base_model_config", model, "an HF model directory", "Axolotl's: its config.json (and tokenizer) instead of "
       "base_model's; the weights stay base_model's", read_base_model_config,
       [](const TrainConfig& c) { return yaml_string(c.base_model_config); }},
      flag("reinit_weights", model, MEMBER(reinit_weights),
           "base_model's architecture with freshly drawn weights (N(0, initializer_range), norms 1, the pad row 0)"),
      integer("hidden_size", model, MEMBER(model.hidden_size), 1, kMaxWidth, "model width"),
      integer("intermediate_size", model, MEMBER(model.intermediate_size), 1, kMaxWidth,
              "SwiGLU MLP width"),
      integer("num_hidden_layers", model, MEMBER(model.num_hidden_layers), 1, kMaxLayers,
              "transformer blocks"),
      integer("num_attention_heads", model, MEMBER(model.num_attention_heads), 1, kMaxHeads,
              "query heads"),
      integer("num_key_value_heads", model, MEMBER(model.num_key_value_heads), 1, kMaxHeads,
              "key/value heads (GQA)"),
      integer("vocab_size", model, MEMBER(model.vocab_size), 1, kMaxVocabSize,
              "embedding rows; must hold the tokenizer's ids"),
      integer("max_position_embeddings", model, MEMBER(model.max_position_embeddings), 1,
              kMaxPositions, "longest sequence the model takes"),
      number("rope_theta", model, MEMBER(model.rope.theta), kPositive, "RoPE base"),
      {"rope_scaling", model, "a map {rope_type: llama3, linear, yarn or dynamic, factor, ...} or null",
       "RoPE frequency scaling as HF's: Llama 3's, linear, YaRN's (with its attention factor) or dynamic NTK's "
       "(which scales only positions past max_position_embeddings, never reached in training: the frequencies "
       "stay unscaled, and the exported config keeps it for inference); null: none",
       read_rope_scaling, write_rope_scaling,
       true},
      number("rms_norm_eps", model, MEMBER(model.rms_norm_eps), kPositive, "RMSNorm epsilon"),
      flag("tie_word_embeddings", model, MEMBER(model.tie_word_embeddings),
           "lm_head shares the embedding matrix"),
      number("initializer_range", model, MEMBER(model.initializer_range), kPositive,
             "std of the initial weights"),
      // Written whenever set, null included: a resolved config then states it over base_model's.
      {"pad_token_id", model, "an id below vocab_size, or null",
       "HF's pad_token_id: the embedding's padding row (transformers' nn.Embedding padding_idx: drawn as zeros, no "
       "gradient); null: none",
       [](ReadContext& ctx, const YAML::Node& n, const Where& w) {
         ctx.config.model.pad_token_id = n.IsNull() ? -1 : read_int(n, w, 0, kMaxVocabSize - 1);
       },
       [](const TrainConfig& c) { return c.model.pad_token_id >= 0 ? std::to_string(c.model.pad_token_id) : "null"; },
       true},
      {"tokenizer_config", model, "a tokenizer.json or tiktoken tokenizer.model, or a directory holding one",
       "Llama 3's BPE tokenizer; unset: the byte tokenizer", read_tokenizer_config,
       [](const TrainConfig& c) { return yaml_string(c.tokenizer_config); }},
      {"special_tokens", model, "a map {bos_token, eos_token, pad_token}",
       "which of the tokenizer's special tokens play BOS, EOS and PAD", read_special_tokens,
       write_special_tokens},
      {"tokens", model, "a list of strings",
       "tokens added to the tokenizer (transformers' add_tokens: whole wherever their text appears); the embedding "
       "and lm_head grow to hold the new ones, their rows drawn as the model's init draws",
       [](ReadContext& ctx, const YAML::Node& n, const Where& w) { ctx.config.tokens = read_string_list(n, w); },
       [](const TrainConfig& c) { return c.tokens.empty() ? std::string() : yaml_list(c.tokens); }},
      flag("resize_token_embeddings_to_32x", model, MEMBER(resize_token_embeddings_to_32x),
           "with tokens, the embedding grows to the tokenizer's size rounded up to a multiple of 32"),
      flag("mean_resizing_embeddings", model, MEMBER(mean_resizing_embeddings),
           "with tokens, the new embedding and lm_head rows start at the mean of the old rows (not drawn)"),
      flag("shrink_embeddings", model, MEMBER(shrink_embeddings),
           "a base vocabulary larger than the tokenizer's size (rounded up to 32 with resize_token_embeddings_to_32x) "
           "is cut to it: embed_tokens and lm_head keep their first rows"),
      {"added_tokens_overrides", model, "a map {token id: new name}",
       "renames added tokens (Llama 3's reserved ones), e.g. for ChatML's markers; the vocabulary keeps its size",
       read_added_tokens_overrides, write_added_tokens_overrides},

      {"adapter", adapters, "one of lora, qlora",
       "train LoRA adapters on frozen base weights (qlora: the base's block linears in NF4); unset: every weight trains",
       [](ReadContext& ctx, const YAML::Node& n, const Where& w) {
         const std::string adapter = read_string(n, w);
         if (adapter != "lora" && adapter != "qlora")
           fail(w, "one of lora, qlora (Axolotl's other adapters, ia3 and qalora among them, are not built)",
                "'" + adapter + "'");
         ctx.config.adapter = adapter;
       },
       [](const TrainConfig& c) { return yaml_string(c.adapter); }},
      flag("load_in_4bit", adapters, MEMBER(load_in_4bit),
           "the base's block linear weights in 4-bit NF4, as bitsandbytes (adapter: qlora)"),
      flag("load_in_8bit", adapters, MEMBER(load_in_8bit),
           "the base's block linear weights in LLM.int8's row-wise int8, as bitsandbytes (adapter: lora)"),
      {"model_quantization_config", adapters, "{backend: bnb, weight_dtype: nf4 or int8}",
       "Axolotl's newer spelling of a bitsandbytes base: nf4 is load_in_4bit (with adapter lora: qlora), int8 "
       "load_in_8bit; other backends are not built",
       read_model_quantization_config, nullptr},
      {"bnb_config_kwargs", adapters, "a map {bnb_4bit_quant_type: nf4, bnb_4bit_use_double_quant}",
       "4-bit quantisation options (qlora)", read_bnb_config_kwargs, write_bnb_config_kwargs},
      integer("lora_r", adapters, MEMBER(lora.r), 1, kMaxWidth, "LoRA rank r"),
      number("lora_alpha", adapters, MEMBER(lora.alpha), kPositive,
             "the adapters' output is scaled by lora_alpha / lora_r"),
      flag("peft_use_rslora", adapters, MEMBER(lora.use_rslora),
           "rank-stabilised LoRA (PEFT's use_rslora): scale lora_alpha / sqrt(lora_r)"),
      {"peft_layers_to_transform", adapters, "a block index or a list of them",
       "only these blocks get adapters (PEFT's layers_to_transform); unset: every block", read_peft_layers,
       [](const TrainConfig& c) {
         std::vector<std::string> items;
         for (int64_t l : c.lora.layers) items.push_back(std::to_string(l));
         return items.empty() ? std::string() : "[" + join(items) + "]";
       }},
      flag("peft_use_dora", adapters, MEMBER(lora.use_dora),
           "DoRA (PEFT's use_dora): each adapted layer's output features scaled by a learned magnitude "
           "over its weight row's norm"),
      number("lora_dropout", adapters, MEMBER(lora.dropout), {0, false, 1, true},
             "dropout on the adapters' input while training"),
      {"lora_target_modules", adapters, "a list of " + join(std::vector<std::string>(kLinearModules, kLinearModules + kNumLinear)) +
           ", or one regular expression of module names",
       "the linear layers of each block that get an adapter; a string: those whose whole HF name it matches (PEFT's re.fullmatch)",
       read_lora_target_modules, [](const TrainConfig& c) {
         if (!c.lora.target_pattern.empty()) return yaml_string(c.lora.target_pattern);
         return c.lora.target_modules.empty() ? std::string() : yaml_list(c.lora.target_modules);
       }},
      flag("lora_target_linear", adapters, MEMBER(lora.target_linear),
           "an adapter on every linear layer of the blocks"),
      number("loraplus_lr_ratio", adapters, MEMBER(loraplus_lr_ratio), kPositive,
             "LoRA+: lora_B (and 1-D trained tensors) learn at learning_rate x this, as PEFT's LoRA+ optimizer"),
      number("loraplus_lr_embedding", adapters, MEMBER(loraplus_lr_embedding), kPositive,
             "LoRA+'s rate for LoRA embedding layers: none are built here, so no effect"),
      name_list("lora_modules_to_save", adapters, MEMBER(lora.modules_to_save), kSavableModules,
                "modules trained whole beside the adapters"),
      {"lora_model_dir", adapters,
       "a PEFT adapter directory (adapter_config.json + adapter_model.safetensors)",
       "a saved PEFT LoRA adapter to start from", read_lora_model_dir,
       [](const TrainConfig& c) { return yaml_string(c.lora_model_dir); }},
      flag("merge_lora", adapters, MEMBER(merge_lora),
           "at the end, also write base + adapters merged to output_dir/merged"),

      {"datasets", data, "a list of {path, type} entries",
       "training data: completion, alpaca, chat_template, input_output or pretokenized files",
       read_datasets, write_datasets},
      {"test_datasets", data, "a list of {path, type} entries",
       "evaluation data instead of val_set_size's held-out share, in the same entries as datasets",
       read_test_datasets, write_test_datasets},
      choice("chat_template", data, MEMBER(data.chat_template), chat_template_choices(),
             "the chat format of chat_template entries that name none (unset: the tokenizer's own, else llama3)"),
      {"chat_template_jinja", data, "a Jinja template, or the path of a .jinja file",
       "the template of chat_template: jinja", read_chat_template_jinja,
       [](const TrainConfig& c) { return yaml_string(c.data.chat_template_jinja); }},
      {"chat_template_kwargs", data, "a map of template variables",
       "more variables for chat_template datasets' Jinja templates, as Axolotl passes them to "
       "apply_chat_template (e.g. date_string for Llama 3.1's)", read_chat_template_kwargs,
       [](const TrainConfig& c) { return c.data.chat_template_kwargs; }},
      {"eot_tokens", data, "a list of special token names",
       "the end-of-turn tokens train_on_eos trains under a Jinja chat template (unset: EOS)",
       [](ReadContext& ctx, const YAML::Node& n, const Where& w) { ctx.config.data.eot_tokens = read_string_list(n, w); },
       [](const TrainConfig& c) { return c.data.eot_tokens.empty() ? std::string() : yaml_list(c.data.eot_tokens); }},
      text("dataset_prepared_path", data, MEMBER(data.dataset_prepared_path),
           "token cache directory; unset: output_dir/prepared"),
      {"val_set_size", data, "a fraction < 1 or a whole count", "held-out examples for evaluation",
       read_val_set_size, [](const TrainConfig& c) { return yaml_number(c.data.val_set_size); }},
      flag("train_on_inputs", data, MEMBER(data.train_on_inputs),
           "prompt tokens (alpaca instructions, untrained segments) take loss too"),
      choice("excess_length_strategy", data, MEMBER(data.excess_length_strategy),
             {"drop", "truncate", "raise"},
             "examples longer than sequence_len (completion rows are split); raise: stop at the first, naming it"),
      integer("min_sample_len", data, MEMBER(data.min_sample_len), 1, kMaxPositions,
              "examples (and completion chunks) of fewer tokens are dropped, as Axolotl's (unset: 2)"),
      integer("eval_sequence_len", data, MEMBER(data.eval_sequence_len), 1, kMaxPositions,
              "test_datasets' examples kept up to this length (excess_length_strategy past it) instead of "
              "sequence_len (unset: sequence_len)"),
      integer("sequence_len", training, MEMBER(data.sequence_len), 1, kMaxPositions,
              "most tokens per row"),
      flag("auto_find_batch_size", training, MEMBER(auto_find_batch_size),
           "a smaller micro_batch_size (x 0.9 at a time, as accelerate retries) when the memory plan does not fit"),
      integer("micro_batch_size", training, MEMBER(micro_batch_size), 1, kMaxBatch,
              "rows per forward pass per rank"),
      integer("eval_batch_size", training, MEMBER(eval_batch_size), 1, kMaxBatch,
              "rows per evaluation forward pass per rank (unset: micro_batch_size); HF's eval_loss weighs each by its rows"),
      integer("gradient_accumulation_steps", training, MEMBER(gradient_accumulation_steps), 1,
              kMaxBatch, "micro-batches per optimizer step"),
      flag("average_tokens_across_devices", training, MEMBER(average_tokens_across_devices),
           "HF's: the step's loss over every rank's targets; false (Axolotl's, which it always sets): each rank's "
           "loss over its own targets, the ranks' gradients and losses averaged"),
      {"batch_size", training, integer_text(1, kMaxBatch * kMaxBatch),
       "Axolotl's: micro_batch_size x gradient_accumulation_steps, given instead of the latter",
       [](ReadContext& ctx, const YAML::Node& n, const Where& w) {
         ctx.batch_size = read_int(n, w, 1, kMaxBatch * kMaxBatch);
       },
       nullptr},
      number("num_epochs", training, MEMBER(num_epochs), {0, true, static_cast<double>(kMaxEpochs), false},
             "passes over the data (unless max_steps); a fraction trains ceil(num_epochs x steps per epoch) "
             "steps, as HF's Trainer"),
      integer("max_steps", training, MEMBER(max_steps), 1, kNoMax,
              "optimizer steps; overrides num_epochs"),
      number("learning_rate", training, MEMBER(learning_rate), kPositive, "peak learning rate"),
      choice("lr_scheduler", training, MEMBER(lr_scheduler),
             {"cosine", "linear", "constant", "constant_with_warmup", "polynomial", "inverse_sqrt", "cosine_with_restarts",
              "cosine_with_min_lr", "cosine_warmup_with_min_lr", "warmup_stable_decay", "rex", "one_cycle",
              "reduce_lr_on_plateau"},
             "learning-rate schedule after warmup (one_cycle: torch's OneCycleLR, which cycles AdamW's beta1 too)"),
      integer("warmup_steps", training, MEMBER(warmup_steps), 0, kNoMax,
              "linear warmup steps from 0"),
      number("warmup_ratio", training, MEMBER(warmup_ratio), kUnit,
             "warmup as a fraction of the steps"),
      number("cosine_min_lr_ratio", training, MEMBER(cosine_min_lr_ratio), kUnit,
             "cosine floor as a fraction of learning_rate"),
      number("cosine_constant_lr_ratio", training, MEMBER(cosine_constant_lr_ratio), kUnit,
             "with cosine_min_lr_ratio: the cosine reaches the floor at this share of the steps, then holds"),
      flag("lr_quadratic_warmup", training, MEMBER(lr_quadratic_warmup),
           "with cosine: warmup by (step / warmup)^2, then the cosine without cosine_min_lr_ratio's floor, as Axolotl"),
      {"lr_scheduler_kwargs", training, "a map of HF scheduler arguments",
       "HF's scheduler arguments: num_cycles (the cosines, warmup_stable_decay), power and lr_end (polynomial), "
       "timescale (inverse_sqrt), min_lr or min_lr_rate (the min-lr cosines), warmup_lr_rate "
       "(cosine_warmup_with_min_lr), num_decay_steps, num_stable_steps, min_lr_ratio, warmup_type and "
       "decay_type (warmup_stable_decay); one_cycle's: pct_start (unset: the warmup's share), anneal_strategy, "
       "div_factor, final_div_factor, three_phase, cycle_momentum, base_momentum, max_momentum; "
       "reduce_lr_on_plateau's: mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, eps",
       read_lr_scheduler_kwargs, write_lr_scheduler_kwargs},
      number("embedding_lr_scale", training, MEMBER(embedding_lr_scale), kPositive,
             "embed_tokens and lm_head learn at learning_rate x this, without weight decay (Axolotl's groups)"),
      number("embedding_lr", training, MEMBER(embedding_lr), kPositive,
             "embed_tokens and lm_head learn at this rate, without weight decay (unless embedding_lr_scale)"),
      {"lr_groups", training, "a list of {name, modules: [name parts], lr}",
       "decayed tensors whose name holds one of a group's modules learn at its lr (the first group that "
       "lists a match)", read_lr_groups, write_lr_groups},
      {"rl", training, "dpo, ipo, kto, orpo or simpo",
       "preference training: on pairs (datasets of a preference type) DPO's sigmoid loss or IPO's squared one "
       "on length-averaged log-likelihoods against the starting model as reference, or SimPO's reference-free "
       "one; ORPO's NLL plus odds ratio on the pairs of its chat_template.argilla rows; on labelled completions "
       "(KTO dataset types) KTO's loss against the reference (a row's two sequences share it: eager attention "
       "becomes flash, which masks them apart)",
       [](ReadContext& ctx, const YAML::Node& n, const Where& w) {
         if (n.IsNull()) return;
         ctx.config.rl = read_choice(n, w, {"dpo", "ipo", "kto", "orpo", "simpo"});
       },
       [](const TrainConfig& c) { return c.rl.empty() ? std::string() : c.rl; }},
      flag("reward_model", training, MEMBER(reward_model),
           "a Bradley-Terry reward model (TRL's RewardTrainer) on bradley_terry.chat_template pairs: the model a "
           "sequence classifier (a score head of one label in place of lm_head, read at each sequence's last "
           "non-pad token), each pair's loss -log sigmoid(r_chosen - r_rejected); exported as "
           "LlamaForSequenceClassification"),
      written_when(number("center_rewards_coefficient", training, MEMBER(center_rewards_coefficient), kNonNegative,
                          "reward_model: each pair's loss plus this times (r_chosen + r_rejected)^2 (TRL's "
                          "RewardConfig), centring the scores; unused by other trainers"),
                   [](const TrainConfig& c) { return c.reward_model; }),
      flag("process_reward_model", training, MEMBER(process_reward_model),
           "a process reward model (TRL's PRMTrainer) on stepwise_supervised rows: the model a token classifier "
           "(a score head of two labels in place of lm_head), each reasoning step's label at its last token, the "
           "loss cross-entropy over those tokens; exported as LlamaForTokenClassification"),
      {"num_labels", training, "1 with reward_model, 2 with process_reward_model",
       "the classifier's labels, as Axolotl's reward-model configs give them (checked, not chosen: each trainer has its own)",
       [](ReadContext&, const YAML::Node& n, const Where& w) { read_int(n, w, 1, 2); }, nullptr},
      only_with_rl(number("rl_beta", training, MEMBER(rl_beta), kPositive,
                          "DPO / IPO / KTO beta: how far the policy may move from the reference; SimPO's "
                          "scale of the length-averaged log-likelihoods; ORPO's odds-ratio weight")),
      {"dpo_beta", training, "a number > 0", "Axolotl's older name of rl_beta (rl_beta and trl.beta win)",
       [](ReadContext&, const YAML::Node& n, const Where& w) { read_double(n, w, kPositive); }, nullptr},
      only_with_rl(number("orpo_alpha", training, MEMBER(orpo_alpha), kPositive,
                          "rl: orpo, the odds-ratio term's weight (TRL's beta, the paper's lambda) unless rl_beta "
                          "or trl.beta is given"),
                   {"orpo"}),
      only_with_rl(number("dpo_label_smoothing", training, MEMBER(dpo_label_smoothing), {0, false, 0.5, true},
                          "rl: dpo, conservative DPO: the share of pairs whose label is taken as flipped"),
                   {"dpo", "ipo"}),
      only_with_rl(number("rpo_alpha", training, MEMBER(rpo_alpha), kNonNegative,
                          "RPO: each pair's loss plus this times the mean NLL of the micro-batch's chosen responses"),
                   {"dpo", "ipo"}),
      {"trl", training, "a map of TRL arguments {beta, ...}",
       "Axolotl's TRL arguments: trl.beta is the preference beta, over rl_beta (written as rl_beta); the rest "
       "are GRPO's (not built) and listed as unused",
       read_trl, nullptr},
      only_with_rl(flag("dpo_use_weighting", training, MEMBER(dpo_use_weighting),
                        "rl: dpo or ipo, WPO's weighting: each pair's loss times exp of each response's mean of "
                        "log p - log sum p^2 over its tokens (TRL's use_weighting)"),
                   {"dpo", "ipo"}),
      only_with_rl(flag("dpo_norm_loss", training, MEMBER(dpo_norm_loss),
                        "rl: dpo on log-likelihoods averaged over each response's tokens (its loss, rewards and logps)"),
                   {"dpo", "ipo"}),
      only_with_rl(name_list("dpo_loss_type", training, MEMBER(dpo_loss_type), {"sigmoid", "ipo", "sft"},
                             "rl: dpo, TRL's loss_type list: each pair's loss the sum of these terms (ipo in it: "
                             "every term on log-likelihoods averaged over each response's tokens; sft: the "
                             "chosen responses' NLL); TRL's other loss types are not built"),
                   {"dpo"}),
      only_with_rl({"dpo_loss_weights", training, "a list of numbers, one per dpo_loss_type",
                    "rl: dpo, each dpo_loss_type term's weight (unset: 1 each); the rewards are weighted alike",
                    read_dpo_loss_weights, write_dpo_loss_weights},
                   {"dpo"}),
      only_with_rl(number("simpo_gamma", training, MEMBER(simpo_gamma), kNonNegative,
                          "rl: simpo, the target margin between the chosen and rejected rewards"),
                   {"simpo"}),
      only_with_rl(number("cpo_alpha", training, MEMBER(cpo_alpha), kNonNegative,
                          "rl: simpo, CPO's weight of the chosen responses' mean NLL added to the loss (0: plain SimPO)"),
                   {"simpo"}),
      only_with_rl(number("kto_desirable_weight", training, MEMBER(kto_desirable_weight), kPositive,
                          "rl: kto, the weight of a desirable row's loss"),
                   {"kto"}),
      only_with_rl(number("kto_undesirable_weight", training, MEMBER(kto_undesirable_weight), kPositive,
                          "rl: kto, the weight of an undesirable row's loss"),
                   {"kto"}),
      flag("fp8", training, MEMBER(fp8),
           "fp8 training's numerics as Axolotl's (torchao Float8Linear): the block linears on e4m3 inputs and "
           "weights and e5m2 gradients with tensorwise scales (not block 0's q_proj nor lm_head)"),
      {"llmcompressor", training, "a map {recipe: {stage: {*_modifiers: {ConstantPruningModifier: {targets, start: 0}}}}, save_compressed}",
       "sparse fine-tuning as Axolotl's LLMCompressorPlugin: the targeted weights keep their starting zeros (masks "
       "re-applied after every step)",
       read_llmcompressor, write_llmcompressor},
      {"qat", training, "a map {activation_dtype, weight_dtype, group_size, fake_quant_after_n_steps}",
       "quantisation-aware training as Axolotl's (torchao): every linear layer and lm_head compute on fake-quantised "
       "inputs and weights (int8 / int4, int4 alone, float8_e4m3fn / int4, float8_e4m3fn / float8_e4m3fn), from "
       "step fake_quant_after_n_steps on",
       read_qat, write_qat},
      number("neftune_noise_alpha", training, MEMBER(neftune_noise_alpha), kPositive,
             "NEFTune: uniform noise of magnitude alpha / sqrt(sequence x hidden) on the embeddings while training"),
      {"noisy_embedding_alpha", training, "a number > 0", "Axolotl's older name of neftune_noise_alpha",
       [](ReadContext& ctx, const YAML::Node& n, const Where& w) { ctx.config.neftune_noise_alpha = read_double(n, w, kPositive); },
       nullptr},
      {"unfrozen_parameters", training, "a list of regular expressions",
       "full fine-tuning trains only the weights whose name one matches from its start (a '.' is a literal "
       "dot unless '.+'), as Axolotl", read_unfrozen_parameters,
       [](const TrainConfig& c) { return c.unfrozen_parameters.empty() ? std::string() : yaml_list(c.unfrozen_parameters); }},
      number("spectrum_top_fraction", training, MEMBER(spectrum_top_fraction), {0, true, 1, false},
             "with plugins: [SpectrumPlugin], the share of each weight kind (highest SNR first) that trains"),
      {"spectrum_model_name", training, "a model name", "with SpectrumPlugin, the model whose SNR scan is read (unset: base_model)",
       [](ReadContext& ctx, const YAML::Node& n, const Where& w) { ctx.config.spectrum_model_name = read_string(n, w); },
       [](const TrainConfig& c) { return c.spectrum_model_name.empty() ? std::string() : yaml_string(c.spectrum_model_name); }},
      // Not written when the optimizer's updates in backward leave nothing to clip (it goes unused).
      written_when(number("max_grad_norm", training, MEMBER(max_grad_norm), kNonNegative,
                          "global gradient-norm clip; 0: none"),
                   [](const TrainConfig& c) { return !c.optimizer_layerwise() && !c.optimizer_lomo(); }),
      integer("seed", training, MEMBER(seed), 0, kNoMax, "seed of init, data order and sampling"),
      bool_or_auto("tf32", training, &TrainConfig::tf32, "TF32 tensor cores for f32 GEMMs on GPU; auto (Axolotl 0.19's "
                                                         "default, here off unless given): on sm_80+"),
      choice("device", training, MEMBER(device), {"auto", "cpu", "cuda"},
             "where to train; auto: a GPU when one is usable"),

      steps_or_share("eval_steps", eval, MEMBER(eval_steps),
                     "evaluate every N steps (below 1: every ceil(N x total steps))"),
      integer("evals_per_epoch", eval, MEMBER(evals_per_epoch), 0, kNoMax,
              "evaluations per epoch instead (0: unset, as Axolotl reads it)"),
      choice("eval_strategy", eval, MEMBER(eval_strategy), {"steps", "epoch", "no"},
             "HF's: epoch evaluates once an epoch, no never; steps follows the keys above; unset: steps if they are given, else epoch"),
      {"evaluation_strategy", eval, "one of steps, epoch, no", "HF's older name of eval_strategy (which wins when both are given, as Axolotl copies the old one only into an unset eval_strategy)",
       [](ReadContext& ctx, const YAML::Node& n, const Where& w) {
         const std::string strategy = read_choice(n, w, {"steps", "epoch", "no"});
         if (ctx.config.eval_strategy.empty()) ctx.config.eval_strategy = strategy;  // (read after eval_strategy)
       },
       nullptr},
      integer_zero_unset("early_stopping_patience", eval, MEMBER(early_stopping_patience), kNoMax,
                         "stop after N evaluations without improvement (0: off, as Axolotl reads it)"),
      number("early_stopping_threshold", eval, MEMBER(early_stopping_threshold), kNonNegative,
             "improvement that counts"),
      flag("load_best_model_at_end", eval, MEMBER(load_best_model_at_end),
           "the final model is the best evaluation's checkpoint (with saves on a multiple of the evaluations' steps)"),
      {"metric_for_best_model", eval, "loss or eval_loss",
       "HF's metric for the best model: eval_loss, the one built; given, the best checkpoint is tracked and rotation keeps it",
       [](ReadContext& ctx, const YAML::Node& n, const Where& w) {
         read_choice(n, w, {"loss", "eval_loss"});
         ctx.config.tracks_best_checkpoint = true;
       },
       [](const TrainConfig& c) { return std::string(c.tracks_best_checkpoint ? "eval_loss" : ""); }},
      {"greater_is_better", eval, "false", "HF's direction of metric_for_best_model: lower eval_loss is better",
       [](ReadContext&, const YAML::Node& n, const Where& w) {
         if (read_bool(n, w)) fail(w, "false (a lower eval_loss is better)", "true");
       }, nullptr},
      number("loss_watchdog_threshold", eval, MEMBER(loss_watchdog_threshold), kNonNegative,
             "stop when the logged training loss stays above this (0: off)"),
      integer("loss_watchdog_patience", eval, MEMBER(loss_watchdog_patience), 1, kNoMax,
              "step ends above loss_watchdog_threshold before stopping"),

      text("output_dir", checkpoints, MEMBER(output_dir),
           "checkpoints, metrics and the final model"),
      steps_or_share("save_steps", checkpoints, MEMBER(save_steps),
                     "checkpoint every N steps (below 1: every ceil(N x total steps))"),
      integer("saves_per_epoch", checkpoints, MEMBER(saves_per_epoch), 0, kNoMax,
              "checkpoints per epoch instead (0: unset, as Axolotl reads it)"),
      choice("save_strategy", checkpoints, MEMBER(save_strategy), {"steps", "epoch", "no", "best"},
             "HF's: epoch saves once an epoch, no only the last step, best at each evaluation with a new best "
             "eval_loss (and the last step); steps follows the keys above; unset: steps if they are given, else epoch"),
      integer_zero_unset("save_total_limit", checkpoints, MEMBER(save_total_limit), kNoMax,
                         "checkpoints kept, the best among them, as HF's rotation (0: unset, as Axolotl reads it)"),
      text("resume_from_checkpoint", checkpoints, MEMBER(resume_from_checkpoint),
           "a checkpoint directory to continue from"),
      flag("overwrite_output_dir", checkpoints, MEMBER(overwrite_output_dir),
           "a new run may replace the checkpoints an earlier run left in output_dir"),
      flag("auto_resume_from_checkpoints", checkpoints, MEMBER(auto_resume_from_checkpoints),
           "continue from the newest valid checkpoint in output_dir"),
      flag("save_first_step", checkpoints, MEMBER(save_first_step),
           "also checkpoint after step 1 (a quick check that saving works)"),
      flag("save_only_model", checkpoints, MEMBER(save_only_model),
           "checkpoints without optimizer state (smaller; resuming from them is refused), but for the ones a "
           "stop signal or the loss watchdog writes"),
      integer("logging_steps", checkpoints, MEMBER(logging_steps), 1, kNoMax,
              "log every N steps"),
      flag("use_tensorboard", checkpoints, MEMBER(use_tensorboard),
           "the log records' numbers also as TensorBoard scalars, as HF's TensorBoardCallback writes them "
           "(output_dir/runs/<time>_<host>, or TENSORBOARD_LOGGING_DIR)"),
      flag("include_tkps", checkpoints, MEMBER(include_tkps),
           "supervised fine-tuning's log records carry tokens/trainable (labelled tokens so far, every rank's) and "
           "tokens/train_per_sec_per_gpu, as Axolotl's (default true)"),

      {"gradient_checkpointing", optimisations, "true or false or offload",
       "recompute each block's activations in backward; offload: the blocks' inputs kept in host memory meanwhile",
       read_gradient_checkpointing,
       [](const TrainConfig& c) {
         return std::string(c.gradient_checkpointing_offload ? "offload" : c.gradient_checkpointing ? "true" : "false");
       }},
      // Written as gradient_checkpointing: offload.
      {"activation_offloading", optimisations, "true, false, legacy or hidden_states",
       "Axolotl's spelling of gradient_checkpointing: offload (which it requires): the recompute segments' inputs "
       "kept in host memory",
       read_activation_offloading, nullptr},
      {"gradient_checkpointing_kwargs", optimisations, "a map {use_reentrant, every_n_layers}",
       "every_n_layers (ours) coarsens recompute; use_reentrant is accepted",
       read_checkpointing_kwargs,
       [](const TrainConfig& c) {
         return "{every_n_layers: " + std::to_string(c.gradient_checkpointing_every_n_layers) + "}";
       }},
  };
  // Rows defined beside their feature, each group placed after a key of its section.
  auto insert_after = [&rows](const char* key, std::vector<ConfigField> more) {
    const auto at = std::find_if(rows.begin(), rows.end(), [key](const ConfigField& f) { return f.name == key; });
    rows.insert(at + 1, std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  };
  insert_after("min_sample_len", sampling_rows(data));
  insert_after("test_datasets", pretraining_rows(data));
  insert_after("dataloader_drop_last", pose_rows(data));
  insert_after("mean_resizing_embeddings", untrained_tokens_rows(model));
  insert_after("lora_target_linear", peft_rows(adapters));
  insert_after("merge_lora", relora_rows(adapters));
  insert_after("lr_quadratic_warmup", jagged_restart_rows(training));
  insert_after("lr_scheduler_kwargs", optimizer_rows(training));
  insert_after("llmcompressor", lisa_rows(training));
  insert_after("llmcompressor", diffusion_rows(training));
  insert_after("optim_target_modules", qgalore_rows(training));
  insert_after("seed", precision_rows(training));
  insert_after("neftune_noise_alpha", eaft_rows(training));
  insert_after("eaft_k", dft_rows(training));
  for (ConfigField& row : attention_rows(optimisations)) rows.push_back(std::move(row));
  for (ConfigField& row : distributed_rows(optimisations)) rows.push_back(std::move(row));
  for (ConfigField& row : speed_only_rows(optimisations)) rows.push_back(std::move(row));
  return rows;
}

#undef MEMBER

}  // namespace

const std::vector<ConfigField>& config_fields() {
  static const std::vector<ConfigField> fields = make_fields();
  return fields;
}

const ConfigField* find_config_field(const std::string& name) {
  static const std::map<std::string, const ConfigField*> by_name = [] {
    std::map<std::string, const ConfigField*> m;
    for (const ConfigField& f : config_fields()) m[f.name] = &f;
    return m;
  }();
  auto it = by_name.find(name);
  return it == by_name.end() ? nullptr : it->second;
}

std::vector<ConfigKey> config_keys() {
  const TrainConfig defaults;
  std::vector<ConfigKey> keys;
  for (const ConfigField& f : config_fields()) {
    std::string value = f.write ? f.write(defaults) : "";
    keys.push_back({f.name, f.expected, value.empty() ? "unset" : value, f.meaning});
  }
  return keys;
}

}  // namespace llm
