// The learning-rate schedules, each as HF's get_scheduler or Axolotl's trainer builds it: the rate
// (and for one_cycle AdamW's beta1) of every optimizer update.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace llm {

// transformers' default lr_end of the polynomial schedule, which must lie below the base rate.
constexpr double kPolynomialLrEnd = 1e-7;

struct LrSchedule {
  // cosine | linear | constant (no warmup, as HF's) | constant_with_warmup | polynomial (HF's
  // defaults: power 1 down to 1e-7) | inverse_sqrt (timescale the warmup, or 10000 without one) |
  // cosine_with_restarts (HF's default of one cycle: the cosine, then 0 past the last step) |
  // cosine_with_min_lr (HF's: the cosine down to min_lr_ratio) | cosine_warmup_with_min_lr (HF's
  // other: warmup from (step + 1) / warmup or warmup_lr_rate, the cosine a step ahead) |
  // warmup_stable_decay (HF's: warmup from min_lr_ratio, the rate held, then num_decay_steps down
  // to min_lr_ratio, each phase shaped linear, cosine or 1-sqrt) | rex (Axolotl's RexLR: the
  // reflected exponential z / (0.1 + 0.9 z) of the steps left, down to min_lr_ratio) | one_cycle
  // (torch's OneCycleLR, below) | reduce_lr_on_plateau (base_lr, no warmup; ReduceOnPlateau lowers it)
  std::string kind = "cosine";
  double base_lr = 3e-4;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  // The floor as a fraction of base_lr: Axolotl's cosine_min_lr_ratio (cosine, rex), HF's min_lr_rate
  // (the min-lr cosines) or min_lr_ratio (warmup_stable_decay).
  double min_lr_ratio = 0.0;
  // Axolotl's cosine_constant_lr_ratio: with a floor, the cosine ends at int(this x total_steps)
  // and the rate holds there (0: the cosine spans every step).
  double constant_lr_ratio = 0.0;
  // HF's scheduler arguments (Axolotl's lr_scheduler_kwargs), < 0: the kind's default. num_cycles:
  // cosine's half-waves x 2 (0.5: one half-wave) or cosine_with_restarts' count (1); power and
  // lr_end: polynomial's (1, 1e-7); timescale: inverse_sqrt's (the warmup, else 10000).
  double num_cycles = -1, power = -1, lr_end = -1, timescale = -1;
  double warmup_lr_rate = -1;  // cosine_warmup_with_min_lr's; < 0: (step + 1) / warmup
  // warmup_stable_decay's: the stable steps (< 0: what warmup and decay leave of total_steps), the
  // decay steps, and each phase's shape.
  int64_t num_stable_steps = -1, num_decay_steps = 0;
  std::string warmup_type = "linear", decay_type = "cosine";
  // Axolotl's lr_quadratic_warmup (with cosine): (step / warmup)^2 during warmup, then the cosine
  // without a floor, as its get_cosine_schedule_with_quadratic_warmup.
  bool quadratic_warmup = false;
  // Axolotl's JaggedLRRestartScheduler around the schedule above (restart_steps > 0): from update
  // restart_steps - restart_anneal on, each period of restart_steps updates starts from
  // restart_min_scale x the rate and climbs back over restart_warmup updates, and its last
  // restart_anneal updates fall towards that floor. As Axolotl builds it (its own initial step on
  // top of the inner schedule's), update k takes the inner rate and scale of k + 1.
  int64_t restart_steps = 0;
  int64_t restart_warmup = 10, restart_anneal = 1;
  double restart_min_scale = 0.001;
  // one_cycle: torch's OneCycleLR as Axolotl's trainer builds it (max_lr base_lr over total_steps).
  // The rate climbs from base_lr / div_factor to base_lr over the first pct_start of the steps, then
  // anneals to that start / final_div_factor (three_phase: back to the start over as many steps
  // first); with cycle_momentum, AdamW's beta1 moves against it, from max_momentum down to
  // base_momentum and back (three_phase: held at max_momentum in the last phase).
  double pct_start = -1;  // < 0: Axolotl's warmup_steps / total_steps
  double div_factor = 25, final_div_factor = 1e4;
  std::string anneal_strategy = "cos";  // or linear
  bool three_phase = false, cycle_momentum = true;
  double base_momentum = 0.85, max_momentum = 0.95;

  // The learning rate of update number `step` (0-based), as HF's LambdaLR gives it. Not finite
  // where one_cycle's phase holding the step spans no steps (torch divides by zero there).
  double lr(int64_t step) const;
  // beta1 for update number `step` when the schedule sets it (one_cycle with cycle_momentum).
  std::optional<double> beta1(int64_t step) const;

 private:
  double inner_lr(int64_t step) const;  // without the jagged restarts
  double cosine_warmup_with_min_lr(int64_t step) const;
  double warmup_stable_decay(int64_t step) const;
  double rex(int64_t step) const;
  struct RateAndMomentum {
    double lr, momentum;
  };
  RateAndMomentum one_cycle(int64_t step) const;
  double lifted(double factor) const;  // base_lr x factor on HF's min_lr_ratio floor
};

// HF's reduce_lr_on_plateau: torch's ReduceLROnPlateau, which the Trainer steps with eval_loss at
// every evaluation and never after an update. The rate starts at the schedule's base_lr and is
// multiplied by `factor` (not below min_lr; a change under eps is skipped) once more than
// `patience` evaluations in a row have not bettered the best by `threshold` (a share of it, or an
// amount), after which `cooldown` evaluations count none.
struct ReduceOnPlateau {
  double factor = 0.1, threshold = 1e-4, min_lr = 0, eps = 1e-8;
  int64_t patience = 10, cooldown = 0;
  bool relative_threshold = true;  // torch's threshold_mode rel (else abs)
  bool maximize = false;           // torch's mode max (else min)
  // The state, which checkpoints keep.
  double lr = 0;
  std::optional<double> best;  // none before the first evaluation
  int64_t bad_evaluations = 0, cooldown_left = 0;
  void observe(double metric);  // torch's step(metrics)
};

}  // namespace llm
