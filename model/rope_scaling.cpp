// defines: the rope_scaling map's type names and per-type field table (model/rope_scaling.h)
#include "model/rope_scaling.h"

#include <fmt/core.h>

#include <array>
#include <utility>

namespace llm {

namespace {

constexpr std::array<std::pair<RopeType, const char*>, 4> kNames = {
    {{RopeType::llama3, "llama3"}, {RopeType::linear, "linear"}, {RopeType::yarn, "yarn"}, {RopeType::dynamic, "dynamic"}}};

RopeScalingField number(const char* key, float RopeConfig::*member) { return {key, member}; }
RopeScalingField needed(RopeScalingField field) {
  field.required = true;
  return field;
}
RopeScalingField optional_number(const char* key, float RopeConfig::*member) {
  RopeScalingField field = number(key, member);
  field.zero_is_unset = true;
  return field;
}

const RopeScalingField kFactor = [] {
  RopeScalingField field = needed(number("factor", &RopeConfig::factor));
  field.at_least_one = true;
  return field;
}();
// transformers 5 fills it in from max_position_embeddings where a map lacks it (the readers do so).
const RopeScalingField kOriginalLength{"original_max_position_embeddings", nullptr,
                                       &RopeConfig::original_max_position_embeddings};

// HF's modeling_rope_utils: factor alone scales linear and dynamic NTK; Llama 3's rule adds its two
// wavelength bounds; YaRN its ramp's rotation counts, whether the ramp's ends are whole dims, and
// its attention factor (or the mscales it derives from).
const std::vector<RopeScalingField> kLlama3 = {kFactor, needed(number("low_freq_factor", &RopeConfig::low_freq_factor)),
                                               needed(number("high_freq_factor", &RopeConfig::high_freq_factor)),
                                               kOriginalLength};
const std::vector<RopeScalingField> kFactorOnly = {kFactor};
const std::vector<RopeScalingField> kYarn = {kFactor,
                                             kOriginalLength,
                                             number("beta_fast", &RopeConfig::beta_fast),
                                             number("beta_slow", &RopeConfig::beta_slow),
                                             {"truncate", nullptr, nullptr, &RopeConfig::truncate},
                                             optional_number("attention_factor", &RopeConfig::attention_factor),
                                             optional_number("mscale", &RopeConfig::mscale),
                                             optional_number("mscale_all_dim", &RopeConfig::mscale_all_dim)};

}  // namespace

const char* rope_type_name(RopeType type) {
  for (const auto& [t, name] : kNames)
    if (t == type) return name;
  return "llama3";
}

std::optional<RopeType> rope_type_named(const std::string& name) {
  for (const auto& [t, n] : kNames)
    if (name == n) return t;
  return std::nullopt;
}

const std::vector<RopeScalingField>& rope_scaling_fields(RopeType type) {
  switch (type) {
    case RopeType::llama3: return kLlama3;
    case RopeType::yarn: return kYarn;
    case RopeType::linear:
    case RopeType::dynamic: return kFactorOnly;
  }
  return kFactorOnly;
}

const RopeScalingField* rope_scaling_field(const std::string& key) {
  for (const std::vector<RopeScalingField>* fields : {&kLlama3, &kYarn})
    for (const RopeScalingField& field : *fields)
      if (key == field.key) return &field;
  return nullptr;
}

std::optional<RopeScalingProblem> rope_scaling_problem(const RopeConfig& r) {
  if (r.type != RopeType::llama3 || r.low_freq_factor < r.high_freq_factor) return std::nullopt;
  return RopeScalingProblem{"low_freq_factor < high_freq_factor",
                            fmt::format("{} and {}", r.low_freq_factor, r.high_freq_factor)};
}

std::string rope_required_message(RopeType type) {
  std::vector<std::string> keys;
  for (const RopeScalingField& field : rope_scaling_fields(type))
    if (field.required) keys.push_back(field.key);
  std::string list;
  for (size_t i = 0; i < keys.size(); ++i)
    list += (i == 0 ? "" : i + 1 == keys.size() ? " and " : ", ") + keys[i];
  return std::string("a number (") + rope_type_name(type) + "'s scaling needs " + list + ", as transformers)";
}

}  // namespace llm
