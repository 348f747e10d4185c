// defines: Trainer::Impl::warn_config_changes: what a resume from YAML says of the keys edited since
// its checkpoint was saved, the schedule's new span among them.
#include <fmt/core.h>

#include <algorithm>
#include <set>

#include "engine/user_error.h"
#include "train/trainer_impl.h"

namespace llm {

namespace {

// The first update both schedules make to which they give other rates (or one_cycle's beta1s), if
// any. A new max_steps re-spans cosine or linear, not constant, constant_with_warmup, inverse_sqrt
// or reduce_lr_on_plateau; when the steps already taken keep their rates (a cosine still in its
// warmup), the resumed run is the one a start with the new max_steps makes.
std::optional<int64_t> first_rate_apart(const LrSchedule& saved, const LrSchedule& now) {
  for (int64_t step = 0; step < std::min(saved.total_steps, now.total_steps); ++step)
    if (!(saved.lr(step) == now.lr(step)) || saved.beta1(step) != now.beta1(step)) return step;
  return std::nullopt;
}

}  // namespace

// A config edited between the save and a resume from it in YAML (`--resume` takes only the keys
// below) goes on with the new settings, but says which ones moved: a new seed holds out other rows,
// a new micro-batch size or accumulation continues at the step's place in the new batches.
void Trainer::Impl::warn_config_changes(const std::optional<TrainConfig>& saved, int64_t saved_step) const {
  // Where and how often the run writes, not how it trains.
  static const std::set<std::string> kQuiet = {"output_dir", "logging_steps", "overwrite_output_dir", "save_steps",
                                               "saves_per_epoch", "save_strategy", "save_total_limit",
                                               "save_first_step", "save_only_model"};
  std::vector<ConfigChange> changes;
  std::optional<int64_t> rates_apart;
  int64_t saved_total = 0;
  if (!saved) return;  // an unsealed (legacy) checkpoint's config that no longer reads: nothing to compare
  try {
    changes = config_changes(config_to_yaml(config_to_save(*saved)), config_to_yaml(config_to_save(config)));
    // The schedule as the saved max_steps (or num_epochs) alone would make it, the rest as now.
    TrainConfig before = config;
    before.max_steps = saved->max_steps;
    before.num_epochs = saved->num_epochs;
    const StepPlan before_plan = plan_steps(before, epoch_shape, !data.split.val.empty());
    saved_total = before_plan.total_steps;
    rates_apart = first_rate_apart(lr_schedule(before, before_plan), schedule);
  } catch (const UserError&) {
    return;
  }
  std::string changed;
  bool span_said = false;  // max_steps and num_epochs moving together: one line
  const auto shown = [](const std::string& value) { return value == "~" ? std::string("unset") : value; };
  for (const ConfigChange& d : changes) {
    if (d.key == "max_steps" || d.key == "num_epochs") {
      if (rates_apart && *rates_apart < saved_step && !span_said)
        say("warning: {}: {} {} -> {}: the schedule now spans {} steps, and its rates from step {} on are not "
            "those of the saved {}-step schedule: from step {} the run is neither the saved one nor one started "
            "with {} {}\n", resumed_from, d.key, shown(d.saved), shown(d.now), plan.total_steps, *rates_apart + 1,
            saved_total, saved_step, d.key, shown(d.now));
      span_said = true;
    } else if (d.key == "micro_batch_size" && config.auto_find_batch_size) {  // fitted to this device's memory
      say("warning: {}: micro_batch_size {} where the checkpoint trained with {} (auto_find_batch_size fits it to the "
          "memory here): the run goes on from step {} at another row, not as the saved run would\n", resumed_from,
          d.now, d.saved, saved_step);
    } else if (!kQuiet.count(d.key))
      changed += (changed.empty() ? "" : ", ") + d.key + " (" + d.saved + " -> " + d.now + ")";
  }
  if (!changed.empty())
    say("warning: {}: {} differs from the config this checkpoint was saved with in {}: the run goes on from step {} "
        "with the new settings, not as the saved run would\n", resumed_from, config.source, changed, saved_step);
}

}  // namespace llm
