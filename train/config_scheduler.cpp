// defines: read_lr_scheduler_kwargs, write_lr_scheduler_kwargs, check_scheduler: HF's
// scheduler arguments (Axolotl's lr_scheduler_kwargs, which its builder hands get_scheduler, or
// torch's OneCycleLR for one_cycle), each taken only by the schedules whose function has it, as
// Python refuses an unexpected argument.
#include <fmt/core.h>

#include <algorithm>
#include <optional>

#include "engine/lr_schedule.h"
#include "train/config_fields.h"

namespace llm {

namespace {

using Kwargs = TrainConfig::SchedulerKwargs;

const std::vector<std::string> kMinLrKinds = {"cosine_with_min_lr", "cosine_warmup_with_min_lr"};
const std::vector<std::string> kWsd = {"warmup_stable_decay"};
const std::vector<std::string> kOneCycle = {"one_cycle"};
const std::vector<std::string> kPlateau = {"reduce_lr_on_plateau"};
const std::vector<std::string> kShapes = {"linear", "cosine", "1-sqrt"};

// A numeric argument: its member, its range and the schedules that take it.
struct NumberArg {
  const char* key;
  double Kwargs::*member;
  Range range;
  bool whole;  // a step count
  std::vector<std::string> kinds;
};

const std::vector<NumberArg>& number_args() {
  static const std::vector<NumberArg> args = {
      {"num_cycles", &Kwargs::num_cycles, kPositive, false,
       {"cosine", "cosine_with_restarts", "cosine_with_min_lr", "cosine_warmup_with_min_lr", "warmup_stable_decay"}},
      {"power", &Kwargs::power, kPositive, false, {"polynomial"}},
      {"lr_end", &Kwargs::lr_end, kNonNegative, false, {"polynomial"}},
      {"timescale", &Kwargs::timescale, kPositive, false, {"inverse_sqrt"}},
      {"min_lr", &Kwargs::min_lr, kNonNegative, false,
       {"cosine_with_min_lr", "cosine_warmup_with_min_lr", "reduce_lr_on_plateau"}},
      {"min_lr_rate", &Kwargs::min_lr_rate, kUnit, false, kMinLrKinds},
      {"warmup_lr_rate", &Kwargs::warmup_lr_rate, kUnit, false, {"cosine_warmup_with_min_lr"}},
      {"min_lr_ratio", &Kwargs::min_lr_ratio, kUnit, false, kWsd},
      {"num_stable_steps", &Kwargs::num_stable_steps, kNonNegative, true, kWsd},
      {"num_decay_steps", &Kwargs::num_decay_steps, kNonNegative, true, kWsd},
      {"pct_start", &Kwargs::pct_start, kUnit, false, kOneCycle},
      {"div_factor", &Kwargs::div_factor, kPositive, false, kOneCycle},
      {"final_div_factor", &Kwargs::final_div_factor, kPositive, false, kOneCycle},
      {"base_momentum", &Kwargs::base_momentum, kBeta, false, kOneCycle},
      {"max_momentum", &Kwargs::max_momentum, kBeta, false, kOneCycle},
      {"factor", &Kwargs::factor, kBeta, false, kPlateau},
      {"patience", &Kwargs::patience, kNonNegative, true, kPlateau},
      {"threshold", &Kwargs::threshold, kNonNegative, false, kPlateau},
      {"cooldown", &Kwargs::cooldown, kNonNegative, true, kPlateau},
      {"eps", &Kwargs::eps, kNonNegative, false, kPlateau},
  };
  return args;
}

// A named choice (a phase's shape, an annealing) and the schedules that take it.
struct ChoiceArg {
  const char* key;
  std::string Kwargs::*member;
  std::vector<std::string> choices;
  std::vector<std::string> kinds;
};

const std::vector<ChoiceArg>& choice_args() {
  static const std::vector<ChoiceArg> args = {
      {"warmup_type", &Kwargs::warmup_type, kShapes, kWsd},
      {"decay_type", &Kwargs::decay_type, kShapes, kWsd},
      {"anneal_strategy", &Kwargs::anneal_strategy, {"cos", "linear"}, kOneCycle},
      {"mode", &Kwargs::mode, {"min", "max"}, kPlateau},
      {"threshold_mode", &Kwargs::threshold_mode, {"rel", "abs"}, kPlateau},
  };
  return args;
}

// A switch (one_cycle's); unset keeps the schedule's default.
struct FlagArg {
  const char* key;
  std::optional<bool> Kwargs::*member;
  std::vector<std::string> kinds;
};

const std::vector<FlagArg>& flag_args() {
  static const std::vector<FlagArg> args = {
      {"three_phase", &Kwargs::three_phase, kOneCycle},
      {"cycle_momentum", &Kwargs::cycle_momentum, kOneCycle},
  };
  return args;
}

bool takes(const std::vector<std::string>& kinds, const std::string& kind) {
  return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

}  // namespace

void read_lr_scheduler_kwargs(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  Kwargs& k = ctx.config.lr_scheduler_kwargs;
  std::vector<std::string> keys;
  for (const NumberArg& a : number_args()) keys.push_back(a.key);
  for (const ChoiceArg& a : choice_args()) keys.push_back(a.key);
  for (const FlagArg& a : flag_args()) keys.push_back(a.key);
  for_fields(n, w, "a map of HF scheduler arguments", [&](const std::string& key, const YAML::Node& v, const Where& wk) {
    for (const NumberArg& a : number_args())
      if (key == a.key) {
        k.*a.member = a.whole ? static_cast<double>(read_int(v, wk, 0)) : read_double(v, wk, a.range);
        return;
      }
    for (const ChoiceArg& a : choice_args())
      if (key == a.key) {
        k.*a.member = read_choice(v, wk, a.choices);
        return;
      }
    for (const FlagArg& a : flag_args())
      if (key == a.key) {
        k.*a.member = read_bool(v, wk);
        return;
      }
    fail(wk, "one of " + join(keys) + " (the arguments of HF's schedulers, torch's OneCycleLR and ReduceLROnPlateau)",
         "'" + key + "'");
  });
}

std::string write_lr_scheduler_kwargs(const TrainConfig& c) {
  const Kwargs& k = c.lr_scheduler_kwargs;
  std::string fields;
  const auto add = [&fields](const std::string& key, const std::string& value) {
    fields += (fields.empty() ? "" : ", ") + key + ": " + value;
  };
  for (const NumberArg& a : number_args())
    if (k.*a.member >= 0) add(a.key, yaml_number(k.*a.member));
  for (const ChoiceArg& a : choice_args())
    if (!(k.*a.member).empty()) add(a.key, yaml_string(k.*a.member));
  for (const FlagArg& a : flag_args())
    if ((k.*a.member).has_value()) add(a.key, *(k.*a.member) ? "true" : "false");
  return fields.empty() ? "" : "{" + fields + "}";
}

namespace {

// Refuses (fail at `at`) an argument the chosen schedule does not take, or one it needs missing.
void check_lr_scheduler_kwargs(const TrainConfig& c, const Where& at) {
  const Kwargs& k = c.lr_scheduler_kwargs;
  const std::string& kind = c.lr_scheduler;
  if (kind == "constant") return;  // HF's get_scheduler builds it without them
  const std::string expected = "arguments of lr_scheduler " + kind;
  for (const NumberArg& a : number_args())
    if (k.*a.member >= 0 && !takes(a.kinds, kind)) fail(at, expected, a.key);
  for (const ChoiceArg& a : choice_args())
    if (!(k.*a.member).empty() && !takes(a.kinds, kind)) fail(at, expected, a.key);
  for (const FlagArg& a : flag_args())
    if ((k.*a.member).has_value() && !takes(a.kinds, kind)) fail(at, expected, a.key);
  if (takes(kMinLrKinds, kind) && (k.min_lr >= 0) == (k.min_lr_rate >= 0))
    fail(at, "lr_scheduler_kwargs with one of min_lr and min_lr_rate for lr_scheduler " + kind + " (as HF's)",
         k.min_lr >= 0 ? "both" : "neither");
  if (kind == "warmup_stable_decay" && k.num_decay_steps < 0)
    fail(at, "lr_scheduler_kwargs with num_decay_steps for lr_scheduler warmup_stable_decay (as HF's)", "none");
}

}  // namespace

// HF's get_scheduler passes lr_scheduler_kwargs to the schedule's function, which refuses
// arguments it does not take; Axolotl's quadratic warmup exists for cosine only. torch's
// OneCycleLR sets every parameter group to one max_lr (learning_rate), which would drop the
// groups' own rates; Axolotl refuses it with ReLoRA, and under jagged restarts alone the wrapper's
// extra step runs past OneCycleLR's total_steps, which it refuses at the run's end.
void check_scheduler(TrainConfig& c, const GivenKeys& keys) {
  // Axolotl builds these schedules itself (its SchedulerMixin: RexLR, the quadratic-warmup cosine,
  // the cosine with a floor) and hands them none of lr_scheduler_kwargs, which it then ignores.
  const bool axolotl_builds = c.lr_scheduler == "rex" ||
                              (c.lr_scheduler == "cosine" && (c.lr_quadratic_warmup || c.cosine_min_lr_ratio > 0));
  if (axolotl_builds && keys.given("lr_scheduler_kwargs")) {
    c.adjustments.push_back("lr_scheduler_kwargs: unused with lr_scheduler " + c.lr_scheduler +
                            (c.lr_scheduler == "rex" ? std::string() : c.lr_quadratic_warmup ? " and lr_quadratic_warmup" : " and cosine_min_lr_ratio") +
                            ", which Axolotl builds without them");
    c.lr_scheduler_kwargs = Kwargs{};
  } else {
    check_lr_scheduler_kwargs(c, keys.at(keys.given("lr_scheduler_kwargs") ? "lr_scheduler_kwargs" : "lr_scheduler"));
  }
  // transformers raises where the polynomial's end is not below the optimizer's rate.
  const double lr_end = c.lr_scheduler_kwargs.lr_end >= 0 ? c.lr_scheduler_kwargs.lr_end : kPolynomialLrEnd;
  if (c.lr_scheduler == "polynomial" && !(c.learning_rate > lr_end))
    fail(keys.at(keys.given("lr_scheduler_kwargs") ? "lr_scheduler_kwargs" : "learning_rate"),
         "lr_end below learning_rate " + fmt::format("{}", c.learning_rate) + " with lr_scheduler polynomial (transformers raises otherwise)",
         fmt::format("lr_end {}", lr_end));
  if (c.lr_quadratic_warmup && c.lr_scheduler != "cosine")
    fail(keys.at("lr_quadratic_warmup"), "lr_scheduler: cosine with it", "lr_scheduler: " + c.lr_scheduler);
  if (c.lr_scheduler != "one_cycle") return;
  const auto refuse = [&keys](const char* key, const char* why) {
    fail(keys.at(key), std::string("no ") + key + " with lr_scheduler one_cycle (torch's OneCycleLR " + why + ")",
         "both");
  };
  for (const char* key : {"loraplus_lr_ratio", "embedding_lr_scale", "embedding_lr", "lr_groups"})
    if (keys.given(key)) refuse(key, "runs every parameter group at learning_rate");
  if (c.jagged_restart_steps > 0) refuse("jagged_restart_steps", "refuses the restarts' extra last step");
  // It cycles `betas[0]` or `momentum` of the optimizer's defaults, and raises when there is
  // neither: optimi's AdamW keeps beta1 and beta2, transformers' Adafactor a beta1, torch's
  // Adagrad, LOMO and AdaLomo neither (torch's SGD and RMSprop keep a momentum, which it cycles in place of their own).
  if ((c.optimizer == "optimi_adamw" || c.optimizer == "adafactor" || c.optimizer == "galore_adafactor" ||
       c.optimizer == "adagrad" || c.optimizer_lomo()) &&
      c.lr_scheduler_kwargs.cycle_momentum.value_or(true))
    fail(keys.at("lr_scheduler"), "lr_scheduler_kwargs cycle_momentum: false with one_cycle and " + c.optimizer +
                                      " (torch's OneCycleLR finds no betas or momentum to cycle in it)",
         "one_cycle");
  // bitsandbytes' RMSprop keeps (alpha, momentum) as its betas: OneCycleLR would cycle alpha.
  if (c.optimizer_bnb_rmsprop() && c.lr_scheduler_kwargs.cycle_momentum.value_or(true))
    fail(keys.at("lr_scheduler"), "lr_scheduler_kwargs cycle_momentum: false with one_cycle and " + c.optimizer +
                                      " (torch's OneCycleLR would cycle its betas[0], bitsandbytes' RMSprop's alpha: "
                                      "not built)",
         "one_cycle");
}

}  // namespace llm
