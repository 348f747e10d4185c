// defines: the evaluation parts of Trainer::Impl: the eval batches round by round, the Trainer's
// eval_loss, and one evaluation logged and counted for early stopping and the best checkpoint
// (preference training's evaluation is in trainer_preference.cpp).
#include <fmt/core.h>

#include <csignal>
#include <cstdlib>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/stop_signal.h"
#include "train/best_model.h"
#include "train/metrics.h"
#include "train/trainer_impl.h"

namespace llm {
namespace {

// Test hook: LLM_TRAIN_SIGNAL_AT_EVAL=STEP:BATCH raises SIGTERM before batch BATCH (0-based) of
// the evaluation at step STEP, where a scheduler's signal may arrive.
void maybe_raise_signal(int64_t step, int64_t batch) {
  const char* at = std::getenv("LLM_TRAIN_SIGNAL_AT_EVAL");
  if (at && fmt::format("{}:{}", step, batch) == at) std::raise(SIGTERM);
}

}  // namespace

void Trainer::Impl::for_each_eval_batch(const std::function<void(const Batch&, bool real)>& f) {
  int64_t rounds = static_cast<int64_t>(val_batches.size());
  const bool lockstep = weight_units() || kto();  // each round is collective
  if (lockstep) comm.allreduce_max(&rounds, 1);
  // A stop signal ends the evaluation between batches (a long one would outlast a scheduler's
  // grace period): every rank agrees, at each round where the rounds are collective, else once
  // after its own batches, so all of them leave it together.
  int64_t signal = 0;
  for (int64_t i = 0; i < rounds && signal == 0; i++) {
    maybe_raise_signal(state.step, i);
    signal = stop_signal();
    if (lockstep) comm.allreduce_max(&signal, 1);
    if (signal != 0) break;
    const bool real = i < static_cast<int64_t>(val_batches.size());
    f(real ? val_batches[i] : eval_filler, real);
  }
  comm.allreduce_max(&signal, 1);
  if (signal != 0) throw EvaluationStopped{static_cast<int>(signal)};
}

float Trainer::Impl::evaluate() {
  NoGradGuard no_grad;
  // The Trainer's eval_loss: each batch's mean token loss, weighted by its rows (its
  // evaluation_loop repeats a batch's loss batch-size times); with eval_batch_size 1 every
  // example weighs the same, whatever its length.
  // loss x rows, rows: summed over this rank's batches, then ranks; then process_reward_model's
  // labelled tokens classified right, and all of them
  double sums[4] = {0.0, 0.0, 0.0, 0.0};
  int64_t index = 0;
  diffusion_eval = {};
  for_each_eval_batch([&](const Batch& b, bool real) {
    // Evaluation reads each batch's loss: it runs between steps, not inside one.
    ForwardOptions opt = options_for(b);
    opt.targets_host = b.targets;
    float loss = 0;
    if (config.diffusion.on) {
      // Diffusion's masks are drawn afresh at each evaluation, as Axolotl's plugin draws them.
      const uint64_t draw = mix_seed(mix_seed(mix_seed(config.seed, 0x4556414C), static_cast<uint64_t>(state.step)), index++);
      const DiffusionPass pass = diffusion_pass(b, b.inputs, mix_seed(draw, comm.rank()), opt);
      loss = pass.loss.item();
      if (real) pass.add_to(diffusion_eval, config.diffusion.importance_weighting);
    } else if (config.process_reward_model) {
      loss = evaluate_token_classifier(b, opt, real, sums + 2);
    } else {
      loss = model->loss(b.inputs.to(device), b.targets.to(device), b.positions.to(device), opt).item();
    }
    // No target: the Trainer's loss is NaN, left out (diffusion's is 0, and counts).
    if (!real || (b.num_targets == 0 && !config.diffusion.on)) return;
    sums[0] += static_cast<double>(loss) * static_cast<double>(b.rows_counted);
    sums[1] += static_cast<double>(b.rows_counted);
  });
  comm.allreduce_sum(sums, 4);
  eval_token_accuracy.reset();
  if (sums[3] > 0) eval_token_accuracy = sums[2] / sums[3];
  return sums[1] > 0 ? static_cast<float>(sums[0] / sums[1]) : 0.0f;
}

// One evaluation at the current step: logged, then counted as HF's callbacks count it
// (`finds_best`: by _determine_best_metric too, which eval_on_start's does not reach). Returns
// whether it is a new best.
bool Trainer::Impl::evaluate_and_record(bool at_start, bool tty) {
  optimizer->set_training(false);  // HF's evaluation_loop calls optimizer.eval()
  float eval_loss = 0.0f;
  std::string eval_pairs, eval_text;  // preference training: the pair metrics, as TRL logs them with eval_
  if (preference()) {
    const PreferenceMetrics m = evaluate_preference();
    eval_loss = static_cast<float>(m.loss);
    eval_pairs = preference_json(m, preference_log(), "eval_") + num_tokens_json("eval_");
    eval_text = " | " + preference_text(m, preference_log());
  } else {
    eval_loss = evaluate();
    eval_pairs = diffusion_eval.json("eval_");  // empty unless diffusion
    eval_text = diffusion_eval.text();
    if (supervised()) eval_pairs += perplexity_json("eval_ppl", eval_loss);
    if (eval_token_accuracy) {  // TRL's PRMTrainer logs eval_accuracy
      eval_pairs += fmt::format(", \"eval_accuracy\": {}", json_number(*eval_token_accuracy));
      eval_text += fmt::format(" | accuracy {:.4g}", *eval_token_accuracy);
    }
  }
  if (metrics) metrics->eval(state.step, eval_loss, eval_pairs);
  if (plateau && !at_start) plateau->observe(eval_loss);  // the rate of the steps after it
  state.newest_logged_loss.reset();  // the newest record is an evaluation's
  bool improved = false;
  if (!at_start)
    improved = record_evaluation(state, state.step, eval_loss, config.early_stopping_threshold);
  else
    record_patience(state, eval_loss, config.early_stopping_threshold);
  const std::string best =
      state.best_eval_loss ? fmt::format(" | best {:.6f} at step {}", *state.best_eval_loss, state.best_step) : "";
  say("{}eval step {} | eval_loss {:.6f}{}{}\n", tty ? "\r\033[K" : "", state.step, eval_loss, eval_text, best);
  return improved;
}

}  // namespace llm
