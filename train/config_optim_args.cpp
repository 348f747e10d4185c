// defines: read_optim_args, write_optim_args: HF's optim_args (Axolotl hands its map or string on
// as "key=value,..."), of which AdEMAMix's, Muon's and AdamC's are read: transformers takes beta1,
// beta2, beta3, alpha, eps, t_alpha and t_beta3 (0: no warmup, as bitsandbytes reads it) from them
// for bitsandbytes' AdEMAMix, weight_lr_power and r for Schedule-Free; Axolotl's Muon takes
// momentum, nesterov and ns_steps, its AdamC max_lr, CAME clip_threshold.
#include <algorithm>

#include "train/config_fields.h"

namespace llm {

namespace {

// choice: one of a list of words, its index kept.
enum class ArgKind { number, steps, flag, choice };
// galore_torch's and apollo_torch's proj_type ('full', projecting from both sides, is not built:
// apollo_torch raises on it), APOLLO's proj and scale_type; these orders are GaloreSide's,
// ApolloBasis' and ApolloScaling's.
const std::vector<std::string> kGaloreSides = {"std", "reverse_std", "right", "left"};
const std::vector<std::string> kApolloBases = {"random", "svd"};
const std::vector<std::string> kApolloScalings = {"channel", "tensor"};

struct OptimArg {
  const char* optimizer;  // "ademamix" (every spelling of it), "muon", "adamc", "came_pytorch" or "schedule_free" (each kind)
  const char* key;
  ArgKind kind;
  Range range = kNonNegative;                       // of a number
  const std::vector<std::string>* words = nullptr;  // of a choice
};

const std::vector<OptimArg>& optim_arg_table() {
  static const std::vector<OptimArg> table = {
      {"ademamix", "beta1", ArgKind::number, kBeta},      {"ademamix", "beta2", ArgKind::number, kBeta},
      {"ademamix", "beta3", ArgKind::number, kBeta},      {"ademamix", "alpha", ArgKind::number},
      {"ademamix", "eps", ArgKind::number},               {"ademamix", "t_alpha", ArgKind::steps},
      {"ademamix", "t_beta3", ArgKind::steps},            {"muon", "momentum", ArgKind::number, kBeta},
      {"muon", "nesterov", ArgKind::flag},                {"muon", "ns_steps", ArgKind::steps},
      {"adamc", "max_lr", ArgKind::number, kPositive},    {"came_pytorch", "clip_threshold", ArgKind::number, kPositive},
      {"schedule_free", "weight_lr_power", ArgKind::number}, {"schedule_free", "r", ArgKind::number, kFinite},
      {"adamw_torch_8bit", "block_size", ArgKind::steps},  {"adamw_torch_8bit", "bf16_stochastic_round", ArgKind::flag},
      {"adamw_torch_4bit", "block_size", ArgKind::steps},  {"adamw_torch_4bit", "bf16_stochastic_round", ArgKind::flag},
      {"ao_adamw_fp8", "block_size", ArgKind::steps},      {"ao_adamw_fp8", "bf16_stochastic_round", ArgKind::flag},
      // transformers' torch.optim ones; their weight_decay is the Trainer's groups', so listed unused.
      {"sgd", "momentum", ArgKind::number},               {"sgd", "dampening", ArgKind::number, kFinite},
      {"sgd", "nesterov", ArgKind::flag},                 {"adagrad", "lr_decay", ArgKind::number},
      {"adagrad", "eps", ArgKind::number},                {"rmsprop", "momentum", ArgKind::number},
      {"rmsprop", "alpha", ArgKind::number},              {"rmsprop", "eps", ArgKind::number},
      {"rmsprop", "centered", ArgKind::flag},
      // transformers reads these four for GaLore and drops the rest.
      {"galore", "rank", ArgKind::steps},                 {"galore", "update_proj_gap", ArgKind::steps},
      {"galore", "scale", ArgKind::number, kFinite},      {"galore", "proj_type", ArgKind::choice, {}, &kGaloreSides},
      // and these six for APOLLO (its scale under a square root).
      {"apollo", "rank", ArgKind::steps},                 {"apollo", "update_proj_gap", ArgKind::steps},
      {"apollo", "scale", ArgKind::number},               {"apollo", "proj_type", ArgKind::choice, {}, &kGaloreSides},
      {"apollo", "proj", ArgKind::choice, {}, &kApolloBases},
      {"apollo", "scale_type", ArgKind::choice, {}, &kApolloScalings},
      // Axolotl hands Q-GaLore's to QGaLoreAdamW8bit's constructor: bitsandbytes' min_8bit_size.
      {"q_galore_adamw8bit", "min_8bit_size", ArgKind::steps},
      // transformers reads these for torch-optimi's StableAdamW; kahan_sum touches bf16 weights only.
      {"stable_adamw", "max_lr", ArgKind::number, kPositive}, {"stable_adamw", "decouple_lr", ArgKind::flag},
      {"stable_adamw", "kahan_sum", ArgKind::flag},
      // transformers reads these for GrokAdamW (its signal's decay rate has no signal to act on).
      {"grokadamw", "alpha_init", ArgKind::number, kUnit}, {"grokadamw", "lamb", ArgKind::number, kFinite},
      {"grokadamw", "gamma", ArgKind::number, kFinite}, {"grokadamw", "grokking_signal_decay_rate", ArgKind::number, kFinite},
      {"grokadamw", "gradient_clipping", ArgKind::number, kFinite}};
  return table;
}

// The name optim_arg_table() lists `c`'s optimizer under, or "" when it reads no optim_args.
std::string table_name(const TrainConfig& c) {
  if (c.optimizer == "adamc" || c.optimizer == "came_pytorch" || c.optimizer_torchao() || c.optimizer_torch_optim() ||
      c.optimizer == "stable_adamw" || c.optimizer == "grokadamw" || c.optimizer_qgalore())
    return c.optimizer;
  if (c.optimizer_schedule_free()) return "schedule_free";
  if (c.optimizer_galore()) return "galore";
  if (c.optimizer_apollo()) return "apollo";
  return c.optimizer_muon() ? "muon" : c.optimizer_ademamix() ? "ademamix" : "";
}

const OptimArg* optim_arg(const TrainConfig& c, const std::string& key) {
  const std::string optimizer = table_name(c);
  for (const OptimArg& a : optim_arg_table())
    if (key == a.key && optimizer == a.optimizer) return &a;
  return nullptr;
}

// A key AdEMAMix or Schedule-Free does not read is listed as unused, as transformers ignores it; Muon's
// constructor takes no other keyword, so Axolotl stops on one. AdamC's would take its lr,
// betas, eps and weight_decay too, which the config's own keys say here (so AdamWFp8's, whose
// amsgrad is not built).
void read_optim_arg(ReadContext& ctx, const std::string& key, const YAML::Node& v, const Where& w) {
  const OptimArg* a = optim_arg(ctx.config, key);
  if (!a && ctx.config.optimizer_muon()) fail(w, "momentum, nesterov or ns_steps (Muon's arguments)", key);
  // transformers hands bitsandbytes' RMSprop optim_args' values as the strings it parsed, on which
  // its constructor raises (a comparison of float and str; centered=False, a true string, raises
  // as centered): a run takes its alpha 0.99 and eps 1e-8 or none.
  if (ctx.config.optimizer_bnb_rmsprop())
    fail(w, "no optim_args with " + ctx.config.optimizer + " (transformers hands bitsandbytes' RMSprop their values as "
         "strings, on which it raises; its alpha 0.99 and eps 1e-8 are what runs)", key);
  if (!a && ctx.config.optimizer == "adamc")
    fail(w, "max_lr (AdamC's argument; its lr, betas, eps and weight_decay come from learning_rate, adam_beta1, "
            "adam_beta2, adam_epsilon and weight_decay)", key);
  if (!a && ctx.config.optimizer == "came_pytorch")
    fail(w, "clip_threshold (CAME's argument; its lr, betas, eps and weight_decay come from learning_rate, "
            "adam_beta1 to adam_beta3, adam_epsilon, adam_epsilon2 and weight_decay)", key);
  if (!a && ctx.config.optimizer_qgalore())
    fail(w, "min_8bit_size (the one QGaLoreAdamW8bit argument built here; the qgalore_* keys set Q-GaLore, "
            "learning_rate, adam_* and weight_decay the rest)", key);
  if (!a && ctx.config.optimizer == "ao_adamw_fp8")
    fail(w, "block_size or bf16_stochastic_round (AdamWFp8's arguments built here; its lr, betas, eps and "
            "weight_decay come from learning_rate, adam_beta1, adam_beta2, adam_epsilon and weight_decay)", key);
  if (!a) {
    ctx.unknown.insert("optim_args." + key);
    return;
  }
  double& value = ctx.config.optim_args[key];
  switch (a->kind) {
    case ArgKind::number: value = read_double(v, w, a->range); break;
    case ArgKind::steps: value = static_cast<double>(read_int(v, w, 0)); break;
    case ArgKind::flag: value = read_bool(v, w) ? 1 : 0; break;
    case ArgKind::choice: {
      const std::string word = read_string(v, w);
      const auto it = std::find(a->words->begin(), a->words->end(), word);
      if (it == a->words->end()) fail(w, "one of " + join(*a->words), word);
      value = static_cast<double>(it - a->words->begin());
      break;
    }
  }
}

}  // namespace

void read_optim_args(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  // Other optimizers' arguments go unread, listed as unused (validate()).
  if (table_name(ctx.config).empty()) return;
  if (n.IsMap()) {
    for_fields(n, w, "a map or a 'key=value,...' string", [&](const std::string& key, const YAML::Node& v,
                                                               const Where& wk) { read_optim_arg(ctx, key, v, wk); });
    return;
  }
  // Axolotl hands a string's values to Muon and AdamC as Python strings, which they cannot take (a
  // momentum, ns_steps or max_lr of "0.9" raises; nesterov "False" is true): only the map's typed
  // values work.
  if (ctx.config.optimizer_muon() || ctx.config.optimizer == "adamc" || ctx.config.optimizer == "came_pytorch" ||
      ctx.config.optimizer == "ao_adamw_fp8" || ctx.config.optimizer_qgalore())
    fail(w, "a map with " + ctx.config.optimizer + " (Axolotl passes a 'key=value' string's values on as strings)",
         "a string");
  // HF's _parse_optim_args: spaces dropped, pairs split at commas, each at its '='.
  std::string text = read_string(n, w);
  text.erase(std::remove(text.begin(), text.end(), ' '), text.end());
  size_t start = 0;
  while (start <= text.size() && !text.empty()) {
    const size_t end = std::min(text.find(',', start), text.size());
    const std::string pair = text.substr(start, end - start);
    const size_t eq = pair.find('=');
    if (eq == std::string::npos || eq == 0 || pair.find('=', eq + 1) != std::string::npos)
      fail(w, "'key=value' pairs separated by commas", "'" + pair + "'");
    const std::string key = pair.substr(0, eq);
    read_optim_arg(ctx, key, YAML::Node(pair.substr(eq + 1)), w.child("." + key, n));
    start = end + 1;
  }
}

std::string write_optim_args(const TrainConfig& c) {
  std::string fields;
  for (const auto& [key, value] : c.optim_args) {
    const OptimArg* a = optim_arg(c, key);
    const std::string text = a && a->kind == ArgKind::flag     ? (value != 0 ? "true" : "false")
                             : a && a->kind == ArgKind::choice ? (*a->words)[static_cast<size_t>(value)]
                                                               : yaml_number(value);
    fields += (fields.empty() ? "" : ", ") + key + ": " + text;
  }
  return fields.empty() ? "" : "{" + fields + "}";
}

void read_optim_target_modules(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  // Axolotl's schema takes a list or the one literal all_linear.
  if (n.IsScalar() && n.as<std::string>() == "all_linear") {
    ctx.config.optim_target_all_linear = true;
    ctx.config.optim_target_modules.clear();
    return;
  }
  if (!n.IsSequence()) fail(w, "a list of module names or regular expressions, or all_linear", describe(n));
  std::vector<std::string> targets = read_string_list(n, w);
  for (size_t i = 0; i < targets.size(); i++) {
    const Where wi = w.child("[" + std::to_string(i) + "]", n[i]);
    if (targets[i].empty()) fail(wi, "a module name or regular expression", "''");
    check_pattern(targets[i], wi, "a module name or a valid regular expression");
  }
  ctx.config.optim_target_all_linear = false;
  ctx.config.optim_target_modules = std::move(targets);
}

}  // namespace llm
