// defines: record_evaluation, record_patience, record_save, loads_best_model_at_end
#include "train/best_model.h"

#include "io/checkpoint.h"

namespace llm {

void record_patience(TrainerState& state, float eval_loss, double threshold) {
  if (!state.best_eval_loss || (eval_loss < *state.best_eval_loss && *state.best_eval_loss - eval_loss > threshold))
    state.patience_counter = 0;
  else
    state.patience_counter++;
}

bool record_evaluation(TrainerState& state, int64_t step, float eval_loss, double threshold) {
  const bool new_best = !state.best_eval_loss || eval_loss < *state.best_eval_loss;
  record_patience(state, eval_loss, threshold);
  if (new_best) {
    state.best_eval_loss = eval_loss;
    state.best_step = step;
  }
  return new_best;
}

void record_save(TrainerState& state, bool best_step_was_saved, const std::string& output_dir) {
  if (state.best_step < 0 || !best_step_was_saved || state.best_checkpoint_step == state.best_step) return;
  state.best_checkpoint_step = state.best_step;
  state.best_checkpoint_dir = output_dir + "/" + checkpoint_dir_name(state.best_step);
}

bool loads_best_model_at_end(const TrainConfig& config, int64_t eval_steps, int64_t save_steps) {
  return (config.load_best_model_at_end || config.early_stopping_patience > 0) && eval_steps > 0 &&
         save_steps > 0 && save_steps % eval_steps == 0;
}

}  // namespace llm
