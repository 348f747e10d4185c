// defines: record_evaluation, record_patience, record_save, loads_best_model_at_end
#include "train/best_model.h"

#include <cmath>

#include "io/checkpoint.h"
#include "train/step_plan.h"

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

bool loads_best_model_at_end(const TrainConfig& c, bool evaluates) {
  const double eval = axolotl_step_setting(c.eval_steps, c.evals_per_epoch, c.num_epochs);
  const double save = axolotl_step_setting(c.save_steps, c.saves_per_epoch, c.num_epochs);
  return (c.load_best_model_at_end || c.early_stopping_patience > 0) && evaluates && eval > 0 && save > 0 &&
         std::fmod(save, eval) == 0.0;  // Python's % of two positive floats
}

}  // namespace llm
