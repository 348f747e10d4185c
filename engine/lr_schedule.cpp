// defines: LrSchedule
#include "engine/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace llm {

double LrSchedule::lr(int64_t step) const {
  if (restart_steps <= 0) return inner_lr(step);
  const int64_t at = step + 1;  // the wrapper's own initial step
  double scale = 1.0;
  if (at >= restart_steps - restart_anneal) {
    const int64_t progress = at % restart_steps;
    double t = 1.0;
    if (progress < restart_warmup)
      t = std::min(1.0, static_cast<double>(progress) / static_cast<double>(restart_warmup));
    else if (progress > restart_steps - restart_anneal)
      t = std::min(1.0, static_cast<double>(restart_steps - progress) / static_cast<double>(restart_anneal));
    scale = t * (1.0 - restart_min_scale) + restart_min_scale;
  }
  return inner_lr(at) * scale;
}

double LrSchedule::inner_lr(int64_t step) const {
  // HF's constant takes no warmup (constant_with_warmup does), nor reduce_lr_on_plateau, whose rate
  // ReduceOnPlateau lowers.
  if (kind == "constant" || kind == "reduce_lr_on_plateau") return base_lr;
  if (kind == "cosine_warmup_with_min_lr") return cosine_warmup_with_min_lr(step);
  if (kind == "warmup_stable_decay") return warmup_stable_decay(step);
  if (kind == "rex") return rex(step);
  if (kind == "one_cycle") return one_cycle(step).lr;
  const double warm = static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  if (step < warmup_steps) return base_lr * (quadratic_warmup ? warm * warm : warm);
  // As Axolotl chooses it: a cosine with both ratios set decays over the first int(ratio x total)
  // steps, then holds at the floor; quadratic warmup takes neither.
  const bool floored = kind == "cosine" && !quadratic_warmup;
  const bool held = floored && constant_lr_ratio > 0 && min_lr_ratio > 0;
  const int64_t end = held ? static_cast<int64_t>(static_cast<double>(total_steps) * constant_lr_ratio) : total_steps;
  const double span = static_cast<double>(std::max<int64_t>(1, end - warmup_steps));
  // The held cosine's progress is Axolotl's (min(step, end) - warmup) / span unclamped: with its end
  // at or before the warmup's, a non-positive whole number, so the rate sits at the top or the
  // floor as its parity says (Axolotl's _get_cosine_schedule_with_warmup_decay_constant_lr_lambda).
  const double progress = held ? static_cast<double>(std::min(step, end) - warmup_steps) / span
                               : std::min(1.0, static_cast<double>(step - warmup_steps) / span);
  if (kind == "linear") return base_lr * std::max(0.0, 1.0 - progress);
  if (kind == "constant_with_warmup") return base_lr;
  if (kind == "polynomial") {  // transformers' get_polynomial_decay_schedule_with_warmup (lr_end below base_lr: the config's check)
    const double end_lr = lr_end >= 0 ? lr_end : kPolynomialLrEnd, exponent = power >= 0 ? power : 1.0;
    return end_lr + (base_lr - end_lr) * std::pow(1.0 - progress, exponent);
  }
  if (kind == "inverse_sqrt") {
    const double scale = timescale > 0 ? timescale : warmup_steps > 0 ? static_cast<double>(warmup_steps) : 10000.0;
    return base_lr / std::sqrt((static_cast<double>(step - warmup_steps) + scale) / scale);
  }
  if (kind == "cosine_with_restarts") {  // each of num_cycles cycles a half cosine from the top
    if (static_cast<double>(step - warmup_steps) >= span) return 0.0;
    const double cycles = num_cycles >= 0 ? num_cycles : 1.0;
    return base_lr * std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * std::fmod(cycles * progress, 1.0))));
  }
  // Axolotl's own cosines (a floor, quadratic warmup) take no num_cycles: one half-wave.
  const bool hf_floor = kind == "cosine_with_min_lr";
  const double cycles = num_cycles >= 0 && !quadratic_warmup && (min_lr_ratio == 0 || hf_floor) ? num_cycles : 0.5;
  const double cosine = std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * cycles * 2.0 * progress)));
  const double floor = floored || hf_floor ? min_lr_ratio : 0.0;
  return base_lr * (floor + (1.0 - floor) * cosine);
}

// transformers' _get_cosine_with_min_lr_schedule_with_warmup_lr_rate_lambda, in its doubles.
double LrSchedule::cosine_warmup_with_min_lr(int64_t step) const {
  const double s = static_cast<double>(step), w = static_cast<double>(warmup_steps);
  if (s < w)
    return base_lr * (warmup_lr_rate < 0 ? (s + 1.0) / std::max(1.0, w)
                                         : warmup_lr_rate + (1.0 - warmup_lr_rate) * s / std::max(1.0, w - 1.0));
  const double progress = (s - w + 1.0) / std::max(1.0, static_cast<double>(total_steps) - w);
  const double cycles = num_cycles >= 0 ? num_cycles : 0.5;
  return lifted(0.5 * (1.0 + std::cos(M_PI * cycles * 2.0 * progress)));
}

// HF's floor under a schedule's factor: factor x (1 - min_lr_ratio) + min_lr_ratio, never below 0.
double LrSchedule::lifted(double factor) const {
  return base_lr * std::max(0.0, factor * (1.0 - min_lr_ratio) + min_lr_ratio);
}

// transformers' _get_wsd_scheduler_lambda: each phase's shape over its progress p, rising in
// warmup (linear p, cosine, 1 - sqrt(1 - p)) and falling in decay (1 - p, the cosine, 1 - sqrt p),
// lifted onto the floor.
double LrSchedule::warmup_stable_decay(int64_t step) const {
  if (step < warmup_steps) {
    const double p = static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
    return lifted(warmup_type == "linear"   ? p
                  : warmup_type == "cosine" ? 0.5 * (1.0 - std::cos(M_PI * p))
                                            : 1.0 - std::sqrt(1.0 - p));
  }
  const int64_t stable = num_stable_steps >= 0 ? num_stable_steps : total_steps - warmup_steps - num_decay_steps;
  if (step < warmup_steps + stable) return base_lr;
  if (step < warmup_steps + stable + num_decay_steps) {
    const double p = static_cast<double>(step - warmup_steps - stable) / static_cast<double>(std::max<int64_t>(1, num_decay_steps));
    const double cycles = num_cycles >= 0 ? num_cycles : 0.5;
    return lifted(decay_type == "linear"   ? 1.0 - p
                  : decay_type == "cosine" ? 0.5 * (1.0 + std::cos(M_PI * cycles * 2.0 * p))
                                           : 1.0 - std::sqrt(p));
  }
  return base_lr * min_lr_ratio;
}

// Axolotl's RexLR, which takes its initial step when built: update k runs at its step k + 1, the
// warmup reaching learning_rate at step `warmup_steps`, then z = the share of the steps after the
// warmup still to come, and past them the floor.
double LrSchedule::rex(int64_t step) const {
  const int64_t at = step + 1;
  if (at <= warmup_steps) return base_lr * static_cast<double>(at) / static_cast<double>(warmup_steps);
  const int64_t after = at - warmup_steps, remaining = total_steps - warmup_steps;
  if (after >= remaining || remaining <= 0) return base_lr * min_lr_ratio;
  const double z = static_cast<double>(remaining - after % remaining) / static_cast<double>(remaining);
  return base_lr * (min_lr_ratio + (1.0 - min_lr_ratio) * (z / (0.1 + 0.9 * z)));
}

std::optional<double> LrSchedule::beta1(int64_t step) const {
  if (kind != "one_cycle" || !cycle_momentum) return std::nullopt;
  return one_cycle(step).momentum;
}

// torch's OneCycleLR.get_lr at last_epoch `step` (its constructor's own step makes that update
// `step`'s): the phase holding the step (each ends at a float step; the last takes everything
// after), annealed from its start to its end over the step's share of it, in torch's doubles.
LrSchedule::RateAndMomentum LrSchedule::one_cycle(int64_t step) const {
  const double total = static_cast<double>(total_steps);
  const double pct = pct_start >= 0 ? pct_start : static_cast<double>(warmup_steps) / total;
  const double initial = base_lr / div_factor, floor = initial / final_div_factor;
  struct Phase {
    double end_step, start_lr, end_lr, start_momentum, end_momentum;
  };
  const std::vector<Phase> phases =
      three_phase ? std::vector<Phase>{{pct * total - 1, initial, base_lr, max_momentum, base_momentum},
                                       {2 * pct * total - 2, base_lr, initial, base_momentum, max_momentum},
                                       {total - 1, initial, floor, max_momentum, max_momentum}}
                  : std::vector<Phase>{{pct * total - 1, initial, base_lr, max_momentum, base_momentum},
                                       {total - 1, base_lr, floor, base_momentum, max_momentum}};
  const auto anneal = [this](double start, double end, double share) {
    if (anneal_strategy == "linear") return (end - start) * share + start;
    return end + (start - end) / 2.0 * (std::cos(M_PI * share) + 1.0);
  };
  const double at = static_cast<double>(step);
  size_t i = 0;
  double start_step = 0.0;
  while (i + 1 < phases.size() && at > phases[i].end_step) start_step = phases[i++].end_step;
  const Phase& p = phases[i];
  const double share = (at - start_step) / (p.end_step - start_step);  // NaN or inf on an empty phase
  return {anneal(p.start_lr, p.end_lr, share), anneal(p.start_momentum, p.end_momentum, share)};
}

// torch's step(metrics): its is_better against the best so far (infinitely bad before the first).
void ReduceOnPlateau::observe(double metric) {
  const double inf = std::numeric_limits<double>::infinity();
  const double b = best.value_or(maximize ? -inf : inf);
  const bool better = maximize ? (relative_threshold ? metric > b * (1.0 + threshold) : metric > b + threshold)
                               : (relative_threshold ? metric < b * (1.0 - threshold) : metric < b - threshold);
  if (better) {
    best = metric;
    bad_evaluations = 0;
  } else {
    bad_evaluations++;
  }
  if (cooldown_left > 0) {
    cooldown_left--;
    bad_evaluations = 0;
  }
  if (bad_evaluations > patience) {
    const double reduced = std::max(lr * factor, min_lr);
    if (lr - reduced > eps) lr = reduced;
    cooldown_left = cooldown;
    bad_evaluations = 0;
  }
}

}  // namespace llm
