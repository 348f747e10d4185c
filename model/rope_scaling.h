// defines: the vocabulary of a rope_scaling map, which HF's config.json and Axolotl's YAML key of
// the same name share: the type names built, each type's fields with the RopeConfig member they
// set, and the rules transformers' validation applies to them. model/hf_config.cpp reads and writes
// the JSON map from this table, train/config_maps.cpp the YAML one.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/ops.h"

namespace llm {

// For messages: "llama3, linear, yarn or dynamic".
inline constexpr const char* kRopeTypesBuilt = "llama3, linear, yarn or dynamic";
const char* rope_type_name(RopeType type);
std::optional<RopeType> rope_type_named(const std::string& name);

// One field of a scaling map: a number, a length or a flag, with the member of RopeConfig it sets
// (exactly one of the three pointers is set).
struct RopeScalingField {
  const char* key;
  float RopeConfig::*number = nullptr;
  int RopeConfig::*length = nullptr;  // in [1, kMaxPositions]
  bool RopeConfig::*flag = nullptr;
  bool at_least_one = false;  // a number >= 1 (factor); every other number is > 0
  bool required = false;      // transformers' validation refuses the map without it (a KeyError)
  bool zero_is_unset = false;  // 0 means "derived" (YaRN's attention_factor, mscale, ...): not written
};

// The fields of a map of this type, in the order they are written.
const std::vector<RopeScalingField>& rope_scaling_fields(RopeType type);
// Any type's field of this name, or nullptr.
const RopeScalingField* rope_scaling_field(const std::string& key);
// What a reader expects of a missing required field of this type: "a number (llama3's scaling
// needs factor, low_freq_factor and high_freq_factor, as transformers)".
std::string rope_required_message(RopeType type);

// What transformers' validation of a whole map of r's type refuses (its fields each fine), as the
// reader's "expected ..., got ..." pair; nullopt when it is consistent. llama3: low_freq_factor
// must be below high_freq_factor.
struct RopeScalingProblem {
  std::string expected, got;
};
std::optional<RopeScalingProblem> rope_scaling_problem(const RopeConfig& r);

// Calls write(key, value) for every field of r's map that is written, value a float, int or bool.
template <class Write>
void for_each_rope_value(const RopeConfig& r, Write&& write) {
  for (const RopeScalingField& field : rope_scaling_fields(r.type)) {
    if (field.number && !(field.zero_is_unset && r.*field.number == 0.0f)) write(field.key, r.*field.number);
    if (field.length) write(field.key, r.*field.length);
    if (field.flag) write(field.key, r.*field.flag);
  }
}

}  // namespace llm
