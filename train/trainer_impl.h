// Trainer internals shared by train/trainer.cpp (set-up and loop) and the train/trainer_*.cpp
// files that hold its parts (checkpoints, data, evaluation, export, model, preference, summary).
#pragma once
#include <fmt/core.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/communicator.h"
#include "engine/frozen_shards.h"
#include "engine/grad_buckets.h"
#include "engine/lr_schedule.h"
#include "engine/optimizer.h"
#include "engine/schedule_free.h"
#include "engine/sharded_adamw.h"
#include "engine/sharded_weights.h"
#include "io/checkpoint.h"
#include "io/dataset.h"
#include "io/tokenizer.h"
#include "model/hf_checkpoint.h"
#include "model/llama.h"
#include "train/preference_metrics.h"
#include "train/constant_pruning.h"
#include "train/metrics.h"
#include "train/preflight.h"
#include "train/step_plan.h"
#include "train/trainer.h"
#include "train/unfrozen_parameters.h"

namespace llm {

// Text for one line of a terminal (the examples start-up shows, the samples at the end): control
// characters spelled out, at most `limit` bytes and whole characters.
std::string one_line(const std::string& text, size_t limit = std::string::npos);

struct Trainer::Impl {
  TrainConfig config;
  Communicator& comm;
  OutputDirLock output_lock;  // rank 0: held for the whole run
  std::string run_id = new_run_id();  // a resume of a sealed checkpoint takes the checkpoint's
  Device device;
  uint64_t memory_available = 0;  // bytes the device could give at start-up; 0: it does not say
  std::unique_ptr<Tokenizer> tokenizer;  // make_tokenizer(config), with `tokens` and special_tokens
  int32_t tokenizer_file_vocab = 0;      // the tokenizer file's own size: the ids `tokens` did not add
  std::vector<std::string> added_tokens;  // config.tokens, and diffusion's mask token when the tokenizer lacks it
  int32_t diffusion_mask_id = -1;         // diffusion training's mask token (train/diffusion.h)
  bool diffusion_mask_added = false;      // its row added to the embedding (as transformers' resize: the mean)
  std::unique_ptr<LlamaModel> model;
  std::vector<ParamRef> params;  // what trains and what checkpoints hold: every weight, or the adapters
  std::vector<Tensor*> param_tensors;
  std::vector<FrozenRows> frozen_rows;  // unfrozen_parameters' row ranges: gradient rows zeroed each step
  std::vector<PruningMask> pruning_masks;  // llmcompressor's: re-applied after every step
  // ZeRO-3's sharded start-up: the most host memory rose above the shards on any rank while the
  // weights were drawn or read (-1: not a sharded start-up).
  int64_t sharded_start_rise = -1;
  size_t quant_bytes = 0;  // qlora / load_in_8bit: what the block linear weights take in NF4 / int8
  std::unique_ptr<GradBuckets> buckets;  // world size > 1
  std::unique_ptr<Optimizer> optimizer;  // the config's optimizer (ShardedAdamW under ZeRO stage 1 to 3)
  ShardedAdamW* sharded_optimizer = nullptr;  // `optimizer` under ZeRO: it holds the f32 master
  ScheduleFree* schedule_free = nullptr;  // `optimizer` when Schedule-Free: its warmup comes from the plan
  std::unique_ptr<ShardedWeights> sharded_weights;  // ZeRO-3 (world size > 1)
  std::unique_ptr<FrozenShards> frozen_shards;      // ZeRO-3 with an adapter: the frozen base
  TrainingData data;
  std::unique_ptr<DataLoader> loader;
  std::vector<Batch> val_batches;
  Batch eval_filler;  // ZeRO-3: what a rank short of eval batches runs (evaluate())
  ForwardOptions forward;
  LrSchedule schedule;
  std::optional<ReduceOnPlateau> plateau;  // reduce_lr_on_plateau: its rate, lowered at evaluations
  EpochShape epoch_shape;  // what plan was made from (a resume plans the saved config alike)
  StepPlan plan;
  bool load_best = false;  // HF's load_best_model_at_end, as Axolotl sets it (train/best_model.h)
  TrainerState state;
  double tokens_since_log = 0;  // tokens (not padding) of every rank since the last log line
  int64_t trainable_at_last_log = 0;  // state.trainable_tokens then (or when this process started)
  double peak_bf16_tflops = 0;  // the device's dense bf16 peak, MFU's denominator (0 on the CPU: no MFU)
  std::string resumed_from;
  // overwrite_output_dir: another run's checkpoints in output_dir, and this run's own after the
  // checkpoint a resume names, removed at this run's first save.
  std::vector<std::string> other_runs_checkpoints, abandoned_checkpoints;
  void find_other_runs_checkpoints();
  void remove_replaced_checkpoints(const std::string& saved);
  std::unique_ptr<MetricsLog> metrics;
  // Preference training (rl): each example's summed log-likelihood under the reference (the
  // starting model), and the pair metrics since the last log line (summed over pairs and ranks).
  std::vector<float> reference_logps;
  PreferenceMetrics preference_since_log;

  // What a Trainer is built for: a run; merge_lora_adapter's tokenizer and model with its adapter,
  // nothing else (inference's the same, without holding output_dir); preprocess's tokenizer and
  // data (the token caches and the batches they make), no device and no model; or evaluate's
  // tokenizer, model (with lora_model_dir's adapter) and data, nothing of a run.
  enum class Purpose { train, merge, preprocess, evaluate, inference };
  explicit Impl(TrainConfig config, Purpose purpose = Purpose::train);
  // The datasets tokenized (rank 0 builds the token caches, the others read them), the loader and
  // the evaluation batches; returns the data settings the run read them with (data_settings).
  DataConfig load_data();
  DataConfig data_settings;
  std::string preprocessed_path;  // Purpose::preprocess: the token caches' directory
  int64_t eval_batch_rows() const;  // the rows of an evaluation batch
  // `rows` served as the Trainer's eval loader serves a dataset (this rank's batches).
  std::vector<Batch> evaluation_batches(const std::vector<Row>& rows) const;
  // Axolotl's evaluate (train/trainer_evaluate.cpp): the training rows, then the validation rows.
  EvaluationSummary evaluate_sets();
  void stop_point(const char* during);
  void fit_micro_batch(bool bf16);  // auto_find_batch_size: micro_batch_size down to what the plan fits
  void grow_vocabulary();  // config.model.vocab_size for the tokens added, or shrink_embeddings (Axolotl's resize)
  // Axolotl's fix_untrained_tokens on the built model, from the training examples and the chat
  // template's text (train/untrained_tokens.h).
  void fix_untrained_tokens(const std::string& chat_template);
  bool vocabulary_grew = false;  // grow_vocabulary gave the model rows the tokenizer needs beyond base_model's
  // How the embedding rows of a grown vocabulary start (none unless `tokens`, shrink_embeddings or
  // a tokenizer larger than base_model's table resize it).
  std::optional<VocabularyGrowth> vocabulary_growth() const {
    if (added_tokens.empty() && !config.shrink_embeddings && !vocabulary_grew) return std::nullopt;
    return VocabularyGrowth{mix_seed(config.seed, 0x746F6B656E73), config.mean_resizing_embeddings || diffusion_mask_added,
                            config.shrink_embeddings};
  }  // start-up: every rank stops here together after a signal
  // train/trainer_model.cpp: the model (seeded, loaded or sharded), its adapters, buckets and
  // optimizer.
  void build_model();
  // LISA (train/lisa.h): before each step, the decoder layers drawn for its interval train and
  // the others wait (no gradient, no update: AdamW counts their missed updates); after the
  // gradients, any a waiting layer got from the data-parallel reduction (zeros) is dropped.
  int64_t lisa_drawn_at = -1;  // the interval start of the current draw
  void apply_lisa();
  void restart_relora();  // ReLoRA's merge, redraw and pruning, when this step begins a period
  // What a checkpoint's model.bin holds: the trained tensors, and with ReLoRA the merged base.
  std::vector<ParamRef> checkpointed_weights() const;
  void drop_waiting_gradients();
  // ZeRO-3's sharded start-up: every base weight drawn from the seed or read from base_model
  // alone, on the host, into `keep`, which keeps this rank's slices; sets sharded_start_rise.
  void sharded_start(bool load_base, const WeightSink& keep);
  // The base's weights as start-up made them, one at a time into `sink`: read from base_model
  // again (returns how many) or drawn from the seed again (returns 0).
  int64_t stream_base(bool load_base, const WeightSink& sink);
  bool base_loaded = false;  // start-up read base_model's weights (else they were drawn)
  // base_model's files' sampled checksum (SafetensorsDir::sampled_checksum) when start-up read them:
  // a checkpoint records it, so a resume on other base weights says so.
  std::optional<uint32_t> base_checksum;
  void print_summary() const;
  // The config's keys llm_train does not use and what it adjusted (rank 0): print_summary's first
  // lines, and all a command other than a run (merge, preprocess, evaluate, inference) prints of it.
  void print_config_warnings() const;
  // " | MFU x%" for a log line on a GPU ("" on the CPU): 6 N + 12 L C S FLOPs a token over the
  // real tokens each device trained, as llm_bench step counts them.
  std::string mfu_text(double tokens_per_s) const;
  void print_adapter_summary(const LoraConfig& lora) const;
  // The units whose weights are sharded (ZeRO-3: trained, or an adapter run's frozen base); null
  // when every weight is always whole.
  WeightUnits* weight_units() const;
  TrainResult run();
  void set_next_beta1();
  float evaluate();
  // One evaluation, logged; `at_start` is HF's eval_on_start one, which neither finds a best
  // model nor steps reduce_lr_on_plateau (its _evaluate(skip_scheduler=True)). Returns whether it
  // is a new best.
  bool evaluate_and_record(bool at_start, bool tty);
  // f(batch, real) for each evaluation batch of this rank; under ZeRO-3 every rank runs as many
  // (weights are gathered with every rank in each forward): a rank short of batches runs a
  // filler, real false, whose result counts for nothing. A stop signal ends it on every rank
  // (EvaluationStopped), nothing recorded.
  void for_each_eval_batch(const std::function<void(const Batch&, bool real)>& f);
  struct EvaluationStopped {
    int signal;
  };
  // Pairs in rows (rl, or reward_model's Bradley-Terry pairs), trained by the pair steps below.
  bool preference() const { return !config.rl.empty() || config.reward_model; }
  bool reward() const { return config.reward_model; }
  bool kto() const { return config.rl == "kto"; }
  PreferenceLog preference_log() const {
    return reward() ? PreferenceLog::reward : kto() ? PreferenceLog::kto : PreferenceLog::pairs;
  }
  bool orpo() const { return config.rl == "orpo"; }
  // A causal LM's supervised fine-tuning, which Axolotl's own AxolotlTrainer runs and logs (ppl,
  // tokens/*): not the pair trainers, the classifiers' (TRL's) nor diffusion's.
  bool supervised() const { return !preference() && !config.process_reward_model && !config.diffusion.on; }
  // Its log record's ppl (or eval_ppl) and, with include_tkps, Axolotl's token counts: the
  // trainable tokens since `trainable_at_last_log` over `seconds`, per rank.
  std::string supervised_log_json(double loss, double seconds);
  // TRL 1.9's RewardTrainer, DPOTrainer (dpo, ipo) and KTOTrainer log their count of training
  // tokens in both kinds of record (num_tokens, eval_num_tokens); its CPO and ORPO trainers (simpo,
  // orpo) do not, and neither does Axolotl's own trainer.
  bool logs_num_tokens() const { return reward() || kto() || config.rl == "dpo" || config.rl == "ipo"; }
  std::string num_tokens_json(const char* prefix) const {
    return logs_num_tokens() ? fmt::format(", \"{}num_tokens\": {}", prefix, state.input_tokens) : "";
  }
  // rl's trainers but simpo and orpo (both reference-free; a reward model has none either).
  bool has_reference() const { return !config.rl.empty() && config.rl != "simpo" && !orpo(); }
  PreferenceLossConfig loss_config() const {
    return {config.rl,          config.rl_beta,       config.dpo_label_smoothing, config.simpo_gamma,
            config.dpo_norm_loss, config.dpo_loss_type, config.dpo_loss_weights};
  }
  // DPO's NLL (rpo_alpha, sft terms) leaves out chosen targets of token id 0 (TRL's), which
  // pair_sequences then keeps apart.
  bool split_zero_targets() const {
    return (config.rl == "dpo" || config.rl == "ipo") && dpo_nll_weight(loss_config(), config.rpo_alpha) >= 0;
  }
  // One optimizer step's gradients: accumulation over micro-batches, then the data-parallel
  // reduction (a layer-wise optimizer updates in the last backward instead). Returns the mean
  // loss over micro-batches and ranks.
  double accumulate_gradients();
  // Diffusion training's pass over micro-batch `b` (its inputs on the host as `inputs_host`), its
  // masks drawn from `seed` (train/diffusion.h): the loss, and each row's log-likelihood of its
  // masked tokens and count of them its logits' argmax predicts, on the device, and the draw.
  struct DiffusionPass {
    Tensor loss, logps, hits;
    DiffusionDraw draw;
    void add_to(DiffusionMetrics& m, bool importance_weighting) const;  // reads logps and hits (waits for the device)
  };
  DiffusionPass diffusion_pass(const Batch& b, const Tensor& inputs_host, uint64_t seed, ForwardOptions opt);
  // Axolotl's sample generation (train/diffusion_samples.h), rank 0 printing what it denoised
  // (collective under ZeRO-3, whose forward is).
  void log_diffusion_samples();  // train/trainer_diffusion_samples.cpp
  DiffusionMetrics diffusion_since_log;  // the step's, summed until the next log line (checkpointed)
  DiffusionMetrics diffusion_eval;       // the last evaluation's
  std::optional<double> eval_token_accuracy;  // process_reward_model: the last evaluation's
  double step_lr = 0.0;  // the step in progress's learning rate
  // The hook one micro-batch's backward runs: data parallel's reduction (the last micro-batch's,
  // or every one's under ZeRO-3), or an optimizer's updates in backward (every pass's: LOMO
  // updates in each, layer-wise GaLore runs one) at step_lr, unfrozen_parameters' frozen rows
  // zeroed first, as Axolotl's gradient hook zeroes them.
  LeafReadyHook backward_hook(bool last, bool every);
  bool loss_watchdog_says_stop();
  // train/trainer_preference.cpp (rl: dpo / ipo / simpo / orpo / kto).
  void compute_reference_logps();  // reference_logps of every training and evaluation pair. Collective.
  // TRL 1.9's DPOTrainer (dpo, ipo) and KTOTrainer log entropy and logits/* over the response
  // tokens (train/preference_metrics.h), formed from each slot's sums (on the host) of its tokens'
  // softmax entropies, mean logits and argmax hits.
  bool token_metrics() const { return kto() || config.rl == "dpo" || config.rl == "ipo"; }
  // f32 (slots) on the device: the policy's summed log-likelihood of each response of a pair batch
  // (sequences: pair_sequences' ids, in host memory; targets_host: the targets there, the batch's
  // or pair_sequences' with ORPO's chosen prompts). With `aligned`: WPO's aligned sums of each slot
  // (dpo_use_weighting), on the host; with `stats`, the token statistics' sums. `adapters_off`:
  // the reference's instead, the base without its LoRA pairs (ForwardOptions::adapters_off).
  Tensor pair_logps(const Batch& b, const Tensor& sequences, int64_t slots, const Tensor& targets_host,
                    std::vector<float>* aligned = nullptr, SlotTokenStats* stats = nullptr, bool adapters_off = false);
  // Adds each round's token-level ratios to m: `rounds` this rank's sums (its micro-batches, or
  // its evaluation batches), round i added over the ranks (collective; a rank with fewer rounds
  // adds none to the rest).
  void add_token_ratios(const std::vector<TokenSums>& rounds, PreferenceMetrics& m);
  // The batch's pair losses and metrics from the policy's log-likelihoods (and WPO's aligned sums,
  // empty without dpo_use_weighting); with grads, d(loss) / d(logps) scaled by weight.
  PreferenceMetrics pair_metrics(const Batch& b, const std::vector<float>& logps, const std::vector<float>& aligned,
                                 const std::vector<int64_t>& tokens, std::vector<float>* grads, double weight) const;
  // rl: kto: the batch's row losses and metrics, its KL estimate reduced over ranks (collective:
  // every rank calls it, with real false when it has no batch of its own).
  PreferenceMetrics kto_metrics(const Batch& b, const std::vector<float>& logps, bool real, std::vector<float>* grads,
                                double weight);
  // rl: kto: whether each row of a batch is desirable (a chosen completion).
  std::vector<bool> desirable_rows(const Batch& b) const;
  // rl: kto's training forward of a micro-batch: the policy's log-likelihood of each row's
  // training sequence (with gradient), its metrics added to `step`, its token sums in `tokens`
  // and d(loss) / d(it) in `grads`.
  Tensor kto_logps(const Batch& b, double weight, PreferenceMetrics& step, TokenSums& tokens, std::vector<float>& grads);
  // reward_model (train/trainer_reward.cpp): f32 (2B, 1) on the device, each pair's chosen and
  // rejected score, each read at its sequence's last non-pad token (transformers' pooling).
  Tensor reward_scores(const Batch& b);
  // The batch's Bradley-Terry losses and metrics from its scores; with grads, d(loss) / d(scores)
  // scaled by weight.
  PreferenceMetrics reward_metrics(const std::vector<float>& scores, std::vector<float>* grads, double weight) const;
  // TRL's min_reward and max_reward, of every rank's scores of a micro-batch (its gathered logits):
  // push_reward_extremes keeps this rank's (negated lowest, highest) of each micro-batch in turn
  // (-inf for one without scores); add_reward_extremes reduces them over ranks and adds each
  // micro-batch's pair, and their count, to `m`. Collective.
  static void push_reward_extremes(const std::vector<float>& scores, std::vector<double>& local);
  void add_reward_extremes(std::vector<double> local, PreferenceMetrics& m);
  // process_reward_model's evaluation of `b`, one forward: returns the mean cross-entropy of the
  // token classifier's logits at the labelled tokens (model->loss's), and adds TRL's
  // compute_accuracy counts: to counts[0] the labelled tokens whose larger logit is their
  // label's (the first on a tie, as np.argmax), to counts[1] all of them (none when !real; the
  // forward runs either way, collective under ZeRO-3).
  float evaluate_token_classifier(const Batch& b, const ForwardOptions& opt, bool real, double* counts);
  double accumulate_preference_gradients();  // as accumulate_gradients, over pairs
  PreferenceMetrics evaluate_preference();   // means over the evaluation pairs of every rank  // updates state.watchdog_violations
  void export_final_model();  // train/trainer_export.cpp: the final model or adapter, with the tokenizer
  // output_dir/merged: the base with every adapter merged, the tokenizer and generation config
  // beside it (rank 0). Returns the directory.
  std::string export_merged_model(DType dtype);
  // What exports write: the compute dtype (bf16 on a GPU), or bf16 wherever bfloat16 keeps the weights in it.
  DType export_dtype() const { return config.bfloat16 ? DType::bf16 : forward.compute_dtype; }
  std::string files_beside(const std::string& dir, bool full_model = true) const;  // tokenizer, generation config
  ForwardOptions options_for(const Batch& batch) const;  // the batch's document mask when packed
  void print_data_summary() const;  // train/trainer_data.cpp
  void print_kto_summary() const;
  void print_reward_summary() const;
  std::string dpo_terms_text() const;
  // Prints on rank 0 only.
  template <class... Args>
  void say(fmt::format_string<Args...> format, Args&&... args) const {
    if (comm.is_main()) fmt::print(format, std::forward<Args>(args)...);
  }

  // train/trainer_checkpoint.cpp
  // What trains, whole, by name (every weight, or the adapters), in f32, to `put`. Under ZeRO the
  // f32 master: one bucket (ZeRO-3: one unit) at a time gathered in host memory and dropped once
  // rank 0 has put it (the other ranks take part and get nothing), so no rank's host or device
  // holds more of the model than a bucket. Collective under ZeRO.
  void export_weights(const TensorSink& put);
  std::vector<TensorEntry> weight_table() const;  // what export_weights puts, in params' order
  // Writes output_dir/step_NNNNNN, prunes old ones; under ZeRO logs how far host memory rose
  // (one gathered bucket at most). Collective.
  // `with_optimizer` false (save_only_model): optimizer.bin holds no tensors, and a resume refuses it.
  std::string save(bool with_optimizer = true);
  // The checkpoint rotation spares: HF's best_model_checkpoint (load_best), or without it early
  // stopping's best step.
  std::optional<int64_t> best_to_keep() const;
  // Model, optimizer, state and data cursor. Each rank reads only what it keeps of model.bin and
  // optimizer.bin (ZeRO-3: its slices); the ranks verify their parts together. Collective.
  void restore(OpenCheckpoint& c);
  void warn_config_changes(const std::optional<TrainConfig>& saved, int64_t saved_step) const;
  int64_t checked_saved_step(const TensorFile& trainer, int64_t total_steps) const;
  void load_weights(TensorFileReader& model_file);  // params from a checkpoint's model.bin
  void load_best_model();  // the weights of state.best_checkpoint_step's checkpoint
  std::string beside_resumed(int64_t step) const;
  // The most host memory rose during restore() on any rank, and the most bytes of the
  // checkpoint's tensors a rank read (-1: no restore).
  int64_t restore_rise = -1, restore_read = -1;
};

}  // namespace llm
