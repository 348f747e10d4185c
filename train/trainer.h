// The training loop: micro-batches with gradient accumulation, clipping, the optimizer on the LR
// schedule, evaluation and early stopping, checkpoints on a cadence with exact resume,
// metrics.jsonl, and a clean stop on SIGINT/SIGTERM.
#pragma once
#include <cstdint>
#include <cstdio>
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "train/config.h"

namespace llm {

struct TrainResult {
  int64_t steps = 0;  // optimizer steps done, counting those before a resume
  std::optional<float> last_loss;  // of this process's last step; none when it trained none (a resume at its end)
  int64_t non_finite_steps = 0;   // this process's steps whose loss or gradient norm was not finite (not applied)
  std::optional<float> best_eval_loss;
  int64_t best_step = -1;
  std::string last_checkpoint;  // empty when none was written
  bool stopped_early = false;   // early_stopping_patience ran out
  bool stopped_by_watchdog = false;  // loss_watchdog_threshold: the loss stayed too high
  bool interrupted = false;     // SIGINT/SIGTERM: a checkpoint was written and the loop left
};

// Everything a checkpoint's trainer.bin holds besides the model and optimizer.
struct TrainerState {
  int64_t step = 0;
  int64_t data_epoch = 0, data_batch = 0;  // the data cursor
  std::optional<float> best_eval_loss;
  int64_t best_step = -1;
  int64_t patience_counter = 0;
  // HF's best_model_checkpoint: the step of the checkpoint load_best_model_at_end loads (-1: none).
  int64_t best_checkpoint_step = -1;
  // Its directory: the output_dir of the run that saved it, which a resume into another
  // output_dir leaves behind (HF's best_model_checkpoint is this path).
  std::string best_checkpoint_dir;
  int64_t bad_steps = 0;  // consecutive non-finite losses or gradient norms
  // The logging window: a log line reports the mean loss of its steps, as HF's Trainer.
  double loss_since_log = 0.0;
  int64_t steps_since_log = 0;
  // Axolotl's tokens/trainable: every rank's training labels that take part (HF's labels != -100)
  // so far, kept across a resume as its tokens_state.json keeps it.
  int64_t trainable_tokens = 0;
  // Every rank's training tokens that are not padding so far (TRL's num_tokens, its attention masks'
  // sum: a KTO row's KL sequence is not among them), kept across a resume.
  int64_t input_tokens = 0;
  // The loss watchdog's view, as Axolotl's callback reads HF's log history: the newest record's
  // training loss (none before the first log, or when an evaluation was recorded after it).
  std::optional<float> newest_logged_loss;
  int64_t watchdog_violations = 0;
  // A stop signal cut the evaluation at `step` short: what follows the step (its evaluation, the
  // saves and the reasons to stop) runs first when this checkpoint resumes.
  bool evaluation_due = false;
};

// What Axolotl's evaluate reports: each set's metrics as HF's evaluate names them (train_loss,
// eval_loss, ..., in its order), and the summary file it writes.
struct EvaluationSummary {
  std::vector<std::pair<std::string, double>> training, validation;  // validation empty without validation rows
  std::string csv_path;  // output_dir/eval_summary.csv (the main rank writes it)
};

class Trainer {
 public:
  // Axolotl's merge-lora: the base with lora_model_dir's adapter merged, written to
  // output_dir/merged (with the tokenizer and generation config), without training or reading the
  // data; returns that directory. One rank. A QLoRA config merges onto the base's NF4 round trip,
  // an 8-bit one onto the base as loaded.
  static std::string merge_lora_adapter(TrainConfig config);
  // Axolotl's preprocess: the datasets tokenized into their token caches (dataset_prepared_path,
  // else output_dir/prepared, where a run of the same config finds them), the rows and batches
  // they make summarised as a run's start-up shows them; no weights are read. Returns that directory.
  static std::string preprocess(TrainConfig config);
  // Axolotl's evaluate: the model the config loads (base_model, with lora_model_dir's adapter)
  // evaluated without training on the training rows, then the validation rows, each served as the
  // Trainer's eval loader serves a dataset, each set's loss as eval_loss; written to
  // output_dir/eval_summary.csv as Axolotl writes it. rl and reward_model: each set's pairs (KTO
  // rows) through TRL's evaluation, its logs beside the loss; the reference (dpo, ipo, kto) as a
  // run's (compute_reference_logps). Collective.
  static EvaluationSummary evaluate_model(TrainConfig config);
  // Axolotl's inference: each prompt read from `in` up to its end (Ctrl+D on a terminal; an empty
  // one ends) answered by the model the config loads (base_model, with lora_model_dir's adapter),
  // written to `out` as Axolotl's do_inference writes it: in `prompter`'s format (Axolotl's
  // --prompter: AlpacaPrompter and its kin, train/prompters.h) after BOS; else under the config's
  // chat template (the top-level chat_template, else the first dataset's when of type
  // chat_template) as a user message with the generation prompt; else after BOS. Up to 1024 new
  // tokens drawn with HF's repetition_penalty 1.1, temperature 0.9, top_k 40 and top_p 0.95, until
  // EOS; streamed, then the whole sequence. One rank; causal LMs (not diffusion, not classifiers).
  static void inference(TrainConfig config, const std::string& prompter, std::istream& in, std::FILE* out);

  // `config` is resolved (train/config.h); a resume_from_checkpoint in it, or auto-resume, is
  // honoured by run(). Bad input surfaces as UserError.
  explicit Trainer(TrainConfig config);
  ~Trainer();
  TrainResult run();
  // After run(): a few lines sampled from the trained model, for a person to look at. Called on
  // every rank: where the weights are still sharded (an adapter run's frozen base under ZeRO-3)
  // each forward gathers units with every rank, which all sample the same tokens; otherwise rank
  // 0 alone samples and the others return "".
  std::string sample_text(int lines, int64_t max_new_tokens);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llm
