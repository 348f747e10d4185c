// defines: peft_rows (PEFT's LoraConfig options beyond r, alpha, dropout and targets:
// lora_rank_pattern / lora_alpha_pattern, peft_init_lora_weights, and the two whose one built
// value is PEFT's default, peft_autocast_adapter_dtype and peft_layers_pattern)
#include <regex>
#include <type_traits>

#include "engine/user_error.h"
#include "train/config_fields.h"

namespace llm {
namespace {
// A pattern map's key: a module-name pattern that must compile, as PEFT's re.match would.
std::string read_module_pattern(const std::string& key, const Where& w) {
  try {
    pattern_key_matches(key, "");  // compiles the key as matching it does
  } catch (const std::regex_error& e) {
    fail(w, "a regular expression of module names as the key", "'" + key + "' (" + e.what() + ")");
  }
  return key;
}

// Python's dict keeps a repeated key at its first place, with the last value.
template <typename Value>
void set_pattern(std::vector<std::pair<std::string, Value>>& patterns, const std::string& key, Value value) {
  for (auto& [k, v] : patterns)
    if (k == key) {
      v = value;
      return;
    }
  patterns.emplace_back(key, value);
}

template <typename Value>
std::string write_patterns(const std::vector<std::pair<std::string, Value>>& patterns) {
  std::string fields;
  for (const auto& [key, value] : patterns)
    fields += (fields.empty() ? "" : ", ") + yaml_string(key) + ": " +
              (std::is_integral_v<Value> ? std::to_string(value) : yaml_number(static_cast<float>(value)));
  return fields.empty() ? "" : "{" + fields + "}";
}
void read_lora_rank_pattern(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  auto& patterns = ctx.config.lora.rank_pattern;
  patterns.clear();
  for_fields(n, w, "a map {module-name pattern: rank}", [&](const std::string& key, const YAML::Node& v, const Where& wk) {
    set_pattern(patterns, read_module_pattern(key, wk), read_int(v, wk, 1, kMaxWidth));
  });
}

std::string write_lora_rank_pattern(const TrainConfig& c) { return write_patterns(c.lora.rank_pattern); }

void read_lora_alpha_pattern(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  auto& patterns = ctx.config.lora.alpha_pattern;
  patterns.clear();
  for_fields(n, w, "a map {module-name pattern: alpha}", [&](const std::string& key, const YAML::Node& v, const Where& wk) {
    set_pattern(patterns, read_module_pattern(key, wk), static_cast<float>(read_double(v, wk, kPositive)));
  });
}

std::string write_lora_alpha_pattern(const TrainConfig& c) { return write_patterns(c.lora.alpha_pattern); }

// PEFT's init_lora_weights: true (A Kaiming-uniform, B zero), false (B Kaiming-uniform too, so
// the untrained adapter already changes the model) or gaussian (A normal with std 1/r).
void read_init_lora_weights(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  const std::string expected = "true, false or gaussian (PEFT's other inits, pissa, olora, eva, corda, loftq, "
                               "orthogonal, ..., are not built)";
  if (!n.IsScalar()) fail(w, expected, describe(n));
  if (n.Scalar() == "gaussian") {
    ctx.config.lora.init = "gaussian";
    return;
  }
  bool init = true;
  try {
    init = read_bool(n, w);
  } catch (const UserError&) {
    fail(w, expected, "'" + n.Scalar() + "'");
  }
  ctx.config.lora.init = init ? "true" : "false";
}

}  // namespace

std::vector<ConfigField> peft_rows(const char* section) {
  return {
      {"lora_rank_pattern", section, "a map {module-name pattern: rank}",
       "per-module ranks (PEFT's rank_pattern): the first pattern matching the end of a module's HF name",
       read_lora_rank_pattern, write_lora_rank_pattern},
      {"lora_alpha_pattern", section, "a map {module-name pattern: alpha}",
       "per-module alphas (PEFT's alpha_pattern), matched as lora_rank_pattern", read_lora_alpha_pattern,
       write_lora_alpha_pattern},
      {"peft_init_lora_weights", section, "true, false or gaussian",
       "PEFT's init_lora_weights: true, A uniform in +-1/sqrt(in) and B zero; false, B uniform in +-1/sqrt(r) too; "
       "gaussian, A normal with std 1/r and B zero",
       read_init_lora_weights, [](const TrainConfig& c) { return c.lora.init == "true" ? std::string() : c.lora.init; }},
      {"peft_autocast_adapter_dtype", section, "true", "PEFT's default: the adapters train in f32, as here",
       [](ReadContext&, const YAML::Node& n, const Where& w) {
         if (!read_bool(n, w)) fail(w, "true (adapters train in f32; kept in bf16 is not built)", "false");
       },
       nullptr},
      {"peft_layers_pattern", section, "layers", "the block list peft_layers_to_transform counts in: Llama's, layers",
       [](ReadContext&, const YAML::Node& n, const Where& w) {
         const std::vector<std::string> names = read_string_list(n, w);
         if (names != std::vector<std::string>{"layers"}) fail(w, "layers (Llama's block list)", describe(n));
       },
       nullptr},
  };
}

}  // namespace llm
