// HF Trainer's bookkeeping of the best evaluation, which early stopping and
// load_best_model_at_end read: the best eval_loss and its step, the patience counter, and the
// checkpoint load_best_model_at_end would load (TrainerState holds them, so a resume goes on).
#pragma once
#include <cstdint>

#include "train/config.h"
#include "train/trainer.h"

namespace llm {

// After an evaluation at `step`, as transformers orders it: EarlyStoppingCallback first (the
// patience resets when eval_loss beats the best so far by more than `threshold`, and the first
// evaluation always does), then _determine_best_metric (any strictly lower eval_loss is the new
// best, even one within the threshold). Returns whether eval_loss is a new best.
bool record_evaluation(TrainerState& state, int64_t step, float eval_loss, double threshold);

// EarlyStoppingCallback's half alone: the evaluation HF's eval_on_start runs before the first
// step reaches the callback but not _determine_best_metric.
void record_patience(TrainerState& state, float eval_loss, double threshold);

// After a checkpoint at a step where HF's Trainer writes one too (save_steps, Axolotl's first
// step, the last step): as _save_checkpoint, the best evaluation's checkpoint becomes the one to
// load when HF's would exist, i.e. when the best step was such a step itself; a new one is in
// `output_dir` (HF keeps its path, so a resume into another output_dir still loads it from there).
void record_save(TrainerState& state, bool best_step_was_saved, const std::string& output_dir);

// Axolotl's rule for HF's load_best_model_at_end (its causal builder): asked for (or early stopping
// is on), an eval set, and its eval_steps and save_steps both set (axolotl_step_setting: given, or a
// per-epoch count's share below 1) with save_steps % eval_steps == 0 in floats. Intervals that an
// epoch strategy or HF's defaults make do not count, whatever they are.
bool loads_best_model_at_end(const TrainConfig& config, bool evaluates);

}  // namespace llm
