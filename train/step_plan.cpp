// defines: plan_steps, step_interval, lr_schedule, lr_plateau
#include "train/step_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "engine/user_error.h"

namespace llm {

namespace {
// torch's OneCycleLR from Axolotl's trainer: its defaults but the cosine annealing and pct_start
// (the warmup's share of the steps), each overridden by lr_scheduler_kwargs. Its steps 0 to
// total_steps (the Trainer steps the schedule once after the last update too) must each fall in a
// phase of some length, or torch divides by zero: refused here, before the run.
void set_one_cycle(LrSchedule& s, const TrainConfig& c) {
  const TrainConfig::SchedulerKwargs& k = c.lr_scheduler_kwargs;
  s.pct_start = k.pct_start;
  if (k.div_factor > 0) s.div_factor = k.div_factor;
  if (k.final_div_factor > 0) s.final_div_factor = k.final_div_factor;
  if (!k.anneal_strategy.empty()) s.anneal_strategy = k.anneal_strategy;
  s.three_phase = k.three_phase.value_or(false);
  s.cycle_momentum = k.cycle_momentum.value_or(true);
  if (k.base_momentum >= 0) s.base_momentum = k.base_momentum;
  if (k.max_momentum >= 0) s.max_momentum = k.max_momentum;
  for (int64_t step = 0; step <= s.total_steps; step++)
    if (!std::isfinite(s.lr(step)))
      throw UserError(fmt::format(
          "{}: lr_scheduler one_cycle: expected phases that span steps, got an empty one at step {} of {} "
          "(pct_start {}{}); change warmup_steps or lr_scheduler_kwargs.pct_start",
          c.source, step, s.total_steps, k.pct_start >= 0 ? k.pct_start : double(s.warmup_steps) / double(s.total_steps),
          s.three_phase ? ", three_phase" : ""));
}

// Axolotl's normalize_config: a count per epoch as a share of the total steps, 1 / (count x
// num_epochs); it sets eval_steps / save_steps to it only when it is below 1.
double per_epoch_share(int64_t per_epoch, double num_epochs) {
  return 1.0 / (static_cast<double>(per_epoch) * num_epochs);
}
}  // namespace

std::optional<ReduceOnPlateau> lr_plateau(const TrainConfig& c, bool evaluates) {
  if (c.lr_scheduler != "reduce_lr_on_plateau") return std::nullopt;
  if (!evaluates || c.eval_strategy == "no")
    throw UserError(c.source + ": lr_scheduler reduce_lr_on_plateau: expected evaluations (an eval set from "
                    "val_set_size or test_datasets, and an eval_strategy other than no), as HF's Trainer steps it "
                    "with eval_loss; got none");
  const TrainConfig::SchedulerKwargs& k = c.lr_scheduler_kwargs;
  ReduceOnPlateau p;
  if (k.factor >= 0) p.factor = k.factor;
  if (k.patience >= 0) p.patience = static_cast<int64_t>(k.patience);
  if (k.threshold >= 0) p.threshold = k.threshold;
  if (k.cooldown >= 0) p.cooldown = static_cast<int64_t>(k.cooldown);
  if (k.eps >= 0) p.eps = k.eps;
  if (k.min_lr >= 0) p.min_lr = k.min_lr;
  p.relative_threshold = k.threshold_mode != "abs";
  p.maximize = k.mode == "max";
  p.lr = c.learning_rate;
  return p;
}

constexpr int64_t kHfSaveSteps = 500;

int64_t step_interval(double steps, int64_t per_epoch, const std::string& strategy, int64_t steps_default,
                      double num_epochs, int64_t updates_per_epoch, int64_t total_steps) {
  const auto share_of_total = [total_steps](double share) {
    return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(static_cast<double>(total_steps) * share)));
  };
  if (steps >= 1) return static_cast<int64_t>(steps);
  if (steps > 0) return share_of_total(steps);
  // Axolotl turns a count per epoch into a share of the total steps when it is below 1, which its
  // builder then saves or evaluates by, whatever the strategy; else it sets no step count, and the
  // strategy decides as if the count were unset.
  if (per_epoch > 0 && per_epoch_share(per_epoch, num_epochs) < 1)
    return share_of_total(per_epoch_share(per_epoch, num_epochs));
  if (strategy == "steps") return steps_default;
  return strategy.empty() || strategy == "epoch" ? updates_per_epoch : 0;
}

double axolotl_step_setting(double steps, int64_t per_epoch, double num_epochs) {
  if (steps > 0) return steps;
  return per_epoch > 0 && per_epoch_share(per_epoch, num_epochs) < 1 ? per_epoch_share(per_epoch, num_epochs) : 0.0;
}

int64_t axolotl_total_steps(const TrainConfig& c, const EpochShape& epoch) {
  const int64_t accumulation = c.gradient_accumulation_steps, world = epoch.world_size;
  if (c.data.sample_packing && c.rl.empty()) {
    const int64_t steps_an_epoch = std::max<int64_t>(1, epoch.rows / epoch.rows_per_batch / (accumulation * world));
    int64_t total = static_cast<int64_t>(std::floor(static_cast<double>(steps_an_epoch) * c.num_epochs));
    if (c.data.dataloader_drop_last.value_or(false)) total -= static_cast<int64_t>(std::ceil(c.num_epochs));
    return total;
  }
  const double batch = static_cast<double>(c.micro_batch_size * accumulation * world);
  return static_cast<int64_t>(std::ceil(static_cast<double>(epoch.rows) * c.num_epochs / batch));
}

StepPlan plan_steps(const TrainConfig& c, const EpochShape& epoch, bool evaluates) {
  StepPlan plan;
  const int64_t accumulation = c.gradient_accumulation_steps;
  plan.updates_per_epoch = (epoch.batches + accumulation - 1) / accumulation;
  const int64_t estimate = std::max<int64_t>(1, axolotl_total_steps(c, epoch));
  plan.total_steps = c.max_steps > 0 ? c.max_steps : estimate;
  // In doubles, as Axolotl's Python computes them, so the roundings agree.
  const double total = static_cast<double>(c.max_steps > 0 && c.rl.empty() ? std::min(c.max_steps, estimate) : estimate);
  int64_t warmup = c.warmup_steps >= 0 ? c.warmup_steps
                   : c.warmup_ratio >= 0 ? static_cast<int64_t>(c.warmup_ratio * total)
                                         : std::min<int64_t>(static_cast<int64_t>(0.03 * total), 100);
  if (warmup == 1) warmup = 2;
  plan.trainer_warmup_steps = warmup;
  plan.warmup_steps = c.lr_scheduler == "constant" || c.lr_scheduler == "reduce_lr_on_plateau" ? 0 : warmup;
  plan.logging_steps = c.logging_steps > 0 ? c.logging_steps
                                           : std::max<int64_t>(std::min<int64_t>(static_cast<int64_t>(0.005 * total), 10), 1);
  if (evaluates) {
    const bool eval_steps_from_per_epoch = c.evals_per_epoch > 0 && per_epoch_share(c.evals_per_epoch, c.num_epochs) < 1;
    plan.eval_on_start = c.eval_steps > 0 || eval_steps_from_per_epoch || !c.eval_strategy.empty();
    // HF's TrainingArguments: eval_strategy steps without eval_steps evaluates every logging_steps.
    plan.eval_steps = step_interval(c.eval_steps, c.evals_per_epoch, c.eval_strategy, plan.logging_steps, c.num_epochs,
                                    plan.updates_per_epoch, plan.total_steps);
  }
  // save_strategy steps without save_steps: TrainingArguments' default save_steps, 500.
  plan.save_steps = step_interval(c.save_steps, c.saves_per_epoch, c.save_strategy, kHfSaveSteps, c.num_epochs,
                                  plan.updates_per_epoch, plan.total_steps);
  return plan;
}

LrSchedule lr_schedule(const TrainConfig& c, const StepPlan& plan) {
  const TrainConfig::SchedulerKwargs& k = c.lr_scheduler_kwargs;
  LrSchedule s;
  s.kind = c.lr_scheduler;
  s.base_lr = c.learning_rate;
  s.warmup_steps = plan.warmup_steps;
  s.total_steps = plan.total_steps;
  s.min_lr_ratio = c.lr_scheduler == "cosine" || c.lr_scheduler == "rex" ? c.cosine_min_lr_ratio
                   : c.lr_scheduler == "warmup_stable_decay" ? std::max(0.0, k.min_lr_ratio)
                   : k.min_lr_rate >= 0                      ? k.min_lr_rate
                   : k.min_lr >= 0                           ? k.min_lr / c.learning_rate
                                                             : 0.0;
  s.constant_lr_ratio = c.cosine_constant_lr_ratio;
  s.num_cycles = k.num_cycles, s.power = k.power, s.lr_end = k.lr_end, s.timescale = k.timescale;
  s.warmup_lr_rate = k.warmup_lr_rate;
  s.num_stable_steps = static_cast<int64_t>(k.num_stable_steps);
  s.num_decay_steps = static_cast<int64_t>(std::max(0.0, k.num_decay_steps));
  if (!k.warmup_type.empty()) s.warmup_type = k.warmup_type;
  if (!k.decay_type.empty()) s.decay_type = k.decay_type;
  s.quadratic_warmup = c.lr_quadratic_warmup;
  s.restart_steps = c.jagged_restart_steps;
  s.restart_warmup = c.jagged_restart_warmup_steps > 0 ? c.jagged_restart_warmup_steps : 10;  // Axolotl's `or` defaults
  s.restart_anneal = c.jagged_restart_anneal_steps > 0 ? c.jagged_restart_anneal_steps : 1;
  s.restart_min_scale = c.cosine_min_lr_ratio > 0 ? c.cosine_min_lr_ratio : 0.001;
  // Warmups the reference stops on, refused before the run: transformers' polynomial divides by
  // its decay steps at the step after the last update, Axolotl's RexLR and torch's OneCycleLR
  // (pct_start, the warmup's share) refuse a warmup longer than the run.
  const auto refuse_warmup = [&](const char* expected) {
    throw UserError(fmt::format("{}: warmup_steps (or warmup_ratio): expected {} with lr_scheduler {}, got {} warmup "
                                "steps of {}", c.source, expected, c.lr_scheduler, s.warmup_steps, s.total_steps));
  };
  if (c.lr_scheduler == "polynomial" && s.warmup_steps == s.total_steps)
    refuse_warmup("fewer than the run's steps (transformers divides by the decay steps, 0)");
  if ((c.lr_scheduler == "rex" || (c.lr_scheduler == "one_cycle" && c.lr_scheduler_kwargs.pct_start < 0)) &&
      s.warmup_steps > s.total_steps)
    refuse_warmup("at most the run's steps (its share is above 1)");
  if (c.lr_scheduler == "one_cycle") set_one_cycle(s, c);
  return s;
}

}  // namespace llm
