// The run's step arithmetic as Axolotl sets up HF's Trainer: how many optimizer steps it takes,
// and at which it warms up, logs, evaluates and saves.
#pragma once
#include <cstdint>
#include <optional>

#include "engine/lr_schedule.h"
#include "train/config.h"

namespace llm {

struct StepPlan {
  int64_t updates_per_epoch = 0;  // an epoch's steps: its last may take fewer micro-batches, and
                                  // none spans two epochs (as the Trainer's)
  int64_t total_steps = 0;
  int64_t warmup_steps = 0;
  int64_t trainer_warmup_steps = 0;  // TrainingArguments' warmup_steps, which Schedule-Free warms up over
  int64_t logging_steps = 1;
  int64_t eval_steps = 0, save_steps = 0;  // 0: only at the run's end
  bool eval_on_start = false;  // HF's: one evaluation before a fresh run's first step
};

// An epoch as the DataLoader serves it.
struct EpochShape {
  int64_t batches = 0;         // this rank's micro-batches (DataLoader::num_batches_per_epoch)
  int64_t rows = 0;            // every rank's rows: examples, pairs, KTO rows, or packed bins
  int64_t rows_per_batch = 1;  // a micro-batch's rows
  int64_t world_size = 1;
};

// Axolotl's total_num_steps (0.19's calculate_total_num_steps, and its RL loader's), which its
// builder hands the Trainer as max_steps: with sample_packing (SFT), floor(num_epochs x max(1,
// micro-batches an epoch // (accumulation x ranks))), an epoch less with dataloader_drop_last;
// else ceil(rows x num_epochs / (micro_batch_size x accumulation x ranks)).
int64_t axolotl_total_steps(const TrainConfig& c, const EpochShape& epoch);

// `evaluates`: there is an eval set.
//   updates_per_epoch: the Trainer's epoch of ceil(batches / accumulation) steps.
//   total_steps: max_steps, else axolotl_total_steps (so the last epoch may stop short of its
//     end, as Axolotl's run does when accumulation does not divide an epoch).
//   warmup_steps: warmup_steps, else int(warmup_ratio x total), else min(int(0.03 x total), 100),
//     total being Axolotl's estimate (with max_steps, the smaller of the two outside rl, as its
//     SFT loader takes it); 1 becomes 2, as Axolotl's builder has it; 0 with the constant
//     schedule (HF's has none). trainer_warmup_steps: the same before that 0, as Axolotl hands
//     it to TrainingArguments.
//   logging_steps: logging_steps, else max(min(int(0.005 x total), 10), 1), the same total.
//   eval_steps / save_steps: see step_interval.
//   eval_on_start: as Axolotl's builder sets it, an eval set and eval_steps (its own, or the share
//     evals_per_epoch gives when below 1) or any eval_strategy, `no` included (HF then evaluates
//     at the start alone).
StepPlan plan_steps(const TrainConfig& c, const EpochShape& epoch, bool evaluates);

// The learning-rate schedule the run's config and plan make, as Axolotl's builder and HF's
// get_scheduler make it (Axolotl's cosine options only with cosine; HF's min_lr becomes a share
// of learning_rate).
LrSchedule lr_schedule(const TrainConfig& c, const StepPlan& plan);

// HF's reduce_lr_on_plateau (torch's ReduceLROnPlateau with lr_scheduler_kwargs, from
// learning_rate), or none for the other schedules. It needs evaluations (`evaluates`, an eval set,
// and an eval_strategy other than no, as HF's TrainingArguments demand): refused without.
std::optional<ReduceOnPlateau> lr_plateau(const TrainConfig& c, bool evaluates);

// The interval of evaluations or saves (0: none but the run's end): `steps` (eval_steps /
// save_steps; below 1, HF's share of the total steps, ceil(share x total)); else `per_epoch`
// (evals_per_epoch / saves_per_epoch): Axolotl's share 1 / (per_epoch x num_epochs) when below 1;
// else (a share of 1 or more sets nothing), with strategy epoch or none (Axolotl's default), once
// an epoch. An explicit strategy "steps" without a count: `steps_default` (HF's: eval_steps
// from logging_steps, save_steps 500).
int64_t step_interval(double steps, int64_t per_epoch, const std::string& strategy, int64_t steps_default,
                      double num_epochs, int64_t updates_per_epoch, int64_t total_steps);

// Axolotl's cfg.eval_steps / cfg.save_steps after its normalize_config, as its builder reads them:
// `steps` as given (a count, or a share below 1), else a per-epoch count's share when below 1;
// 0 when unset (an epoch strategy or HF's defaults then decide the interval, not this value).
double axolotl_step_setting(double steps, int64_t per_epoch, double num_epochs);

}  // namespace llm
