// defines: read_optim_args, write_optim_args: HF's optim_args (Axolotl hands its map or string on
// as "key=value,..."), of which AdEMAMix's are read: transformers takes beta1, beta2, beta3,
// alpha, eps, t_alpha and t_beta3 (0: no warmup, as bitsandbytes reads it) from them for
// bitsandbytes' AdEMAMix.
#include <algorithm>

#include "train/config_fields.h"

namespace llm {

namespace {

struct OptimArg {
  const char* key;
  Range range;
  bool whole;  // a step count (t_alpha, t_beta3)
};

const std::vector<OptimArg>& optim_arg_table() {
  static const std::vector<OptimArg> table = {
      {"beta1", kBeta, false}, {"beta2", kBeta, false},        {"beta3", kBeta, false}, {"alpha", kNonNegative, false},
      {"eps", kNonNegative, false}, {"t_alpha", kNonNegative, true}, {"t_beta3", kNonNegative, true}};
  return table;
}

// A key transformers does not read for AdEMAMix is listed as unused, as it ignores it.
void read_optim_arg(ReadContext& ctx, const std::string& key, const YAML::Node& v, const Where& w) {
  for (const OptimArg& a : optim_arg_table())
    if (key == a.key) {
      ctx.config.optim_args[key] = a.whole ? static_cast<double>(read_int(v, w, 0)) : read_double(v, w, a.range);
      return;
    }
  ctx.unknown.insert("optim_args." + key);
}

}  // namespace

void read_optim_args(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  // Other optimizers' arguments (galore's, apollo's) go unread, listed as unused (validate()).
  if (!ctx.config.optimizer_ademamix()) return;
  if (n.IsMap()) {
    for_fields(n, w, "a map or a 'key=value,...' string", [&](const std::string& key, const YAML::Node& v,
                                                               const Where& wk) { read_optim_arg(ctx, key, v, wk); });
    return;
  }
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
  for (const auto& [key, value] : c.optim_args) fields += (fields.empty() ? "" : ", ") + key + ": " + yaml_number(value);
  return fields.empty() ? "" : "{" + fields + "}";
}

}  // namespace llm
