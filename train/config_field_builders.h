// The builders of the config's field table (train/config_fields.cpp): one ConfigField per key
// from a TrainConfig member, its bounds and its meaning, read and written the same way.
#pragma once
#include <optional>
#include <type_traits>

#include "train/config_fields.h"

namespace llm::field_builders {

// A TrainConfig member, as one accessor usable on a const config (writers) and a mutable one
// (readers): MEMBER(model.hidden_size).
#define MEMBER(path) [](auto& c) -> auto& { return c.path; }

template <typename Get>
using MemberType =
    std::remove_reference_t<decltype(std::declval<Get>()(std::declval<TrainConfig&>()))>;

// Integer keys. A negative value is the "unset" default (-1) of a key whose range excludes it:
// it is written as null, which reads back as unset.
template <typename Get>
ConfigField integer(const char* name, const char* section, Get get, int64_t min, int64_t max,
                    const char* meaning) {
  using T = MemberType<Get>;
  return {name, section, integer_text(min, max), meaning,
          [get, min, max](ReadContext& ctx, const YAML::Node& n, const Where& w) {
            get(ctx.config) = static_cast<T>(read_int(n, w, min, max));
          },
          [get](const TrainConfig& c) {
            if constexpr (std::is_signed_v<T>)
              if (get(c) < 0) return std::string();
            return std::to_string(get(c));
          }};
}

// Integer keys that Axolotl reads through Python's truthiness, so 0 is the key unset (the
// member's default): `if cfg.early_stopping_patience:`, `cfg.save_total_limit or 4`.
template <typename Get>
ConfigField integer_zero_unset(const char* name, const char* section, Get get, int64_t max, const char* meaning) {
  using T = MemberType<Get>;
  ConfigField field = integer(name, section, get, 0, max, meaning);
  field.read = [get, max](ReadContext& ctx, const YAML::Node& n, const Where& w) {
    const int64_t value = read_int(n, w, 0, max);
    TrainConfig defaults;
    get(ctx.config) = value == 0 ? get(defaults) : static_cast<T>(value);
  };
  return field;
}

// Number keys; a float member (the model's) must also be finite as a float.
template <typename Get>
ConfigField number(const char* name, const char* section, Get get, Range range,
                   const char* meaning) {
  using T = MemberType<Get>;
  if (std::is_same_v<T, float> && range.hi > kFloatMax)
    range = {range.lo, range.lo_open, kFloatMax, false};
  return {name, section, range.text(), meaning,
          [get, range](ReadContext& ctx, const YAML::Node& n, const Where& w) {
            get(ctx.config) = static_cast<T>(read_double(n, w, range));
          },
          [get](const TrainConfig& c) { return get(c) < 0 ? std::string() : yaml_number(get(c)); }};
}

// A key written into a resolved config only when used(c) holds (null otherwise: a resume of a run
// that leaves it unused, another optimizer's or trainer's, finds nothing unused it did not say).
template <typename Used>
ConfigField written_when(ConfigField field, Used used) {
  field.write = [write = field.write, used](const TrainConfig& c) { return used(c) ? write(c) : std::string(); };
  return field;
}

// A preference-training key: written (as a run's saved config) only when rl is one of `trainers`
// (empty: any).
inline ConfigField only_with_rl(ConfigField field, std::vector<std::string> trainers = {}) {
  return written_when(std::move(field), [trainers](const TrainConfig& c) {
    return !c.rl.empty() && (trainers.empty() || std::find(trainers.begin(), trainers.end(), c.rl) != trainers.end());
  });
}

// HF's eval_steps / save_steps: a whole number of steps, or a share of the total steps below 1.
template <typename Get>
ConfigField steps_or_share(const char* name, const char* section, Get get, const char* meaning) {
  const char* expected = "a whole number of steps >= 1 or a share of the total steps in (0, 1)";
  return {name, section, expected, meaning,
          [get, expected](ReadContext& ctx, const YAML::Node& n, const Where& w) {
            const double v = read_double(n, w, kPositive);
            if (v >= 1 && v != std::floor(v)) fail(w, expected, describe(n));
            get(ctx.config) = v;
          },
          [get](const TrainConfig& c) { return get(c) < 0 ? std::string() : yaml_number(get(c)); }};
}

template <typename Get>
ConfigField flag(const char* name, const char* section, Get get, const char* meaning,
                 const std::string& note = "") {
  return {name, section, "true or false" + note, meaning,
          [get, note](ReadContext& ctx, const YAML::Node& n, const Where& w) {
            get(ctx.config) = read_bool(n, w, note);
          },
          [get](const TrainConfig& c) {
            // An optional flag's unset is written as null, which reads back as unset.
            if constexpr (std::is_same_v<MemberType<Get>, std::optional<bool>>)
              return get(c) ? std::string(*get(c) ? "true" : "false") : std::string();
            else
              return std::string(get(c) ? "true" : "false");
          }};
}

template <typename Get>
ConfigField text(const char* name, const char* section, Get get, const char* meaning) {
  return {name, section, "a non-empty string", meaning,
          [get](ReadContext& ctx, const YAML::Node& n, const Where& w) {
            get(ctx.config) = read_string(n, w);
          },
          [get](const TrainConfig& c) { return yaml_string(get(c)); }};
}

template <typename Get>
ConfigField choice(const char* name, const char* section, Get get,
                   std::vector<std::string> allowed, const char* meaning) {
  return {name, section, "one of " + join(allowed), meaning,
          [get, allowed](ReadContext& ctx, const YAML::Node& n, const Where& w) {
            get(ctx.config) = read_choice(n, w, allowed);
          },
          [get](const TrainConfig& c) { return yaml_string(get(c)); }};
}

// A list of names, each one of `allowed`; empty is unset.
template <typename Get>
ConfigField name_list(const char* name, const char* section, Get get,
                      std::vector<std::string> allowed, const char* meaning) {
  const std::string expected = "a list of " + join(allowed);
  return {name, section, expected, meaning,
          [get, allowed, expected](ReadContext& ctx, const YAML::Node& n, const Where& w) {
            std::vector<std::string> names = read_string_list(n, w);
            for (const std::string& s : names)
              if (std::find(allowed.begin(), allowed.end(), s) == allowed.end())
                fail(w, expected, "'" + s + "'");
            get(ctx.config) = names;
          },
          [get](const TrainConfig& c) { return get(c).empty() ? std::string() : yaml_list(get(c)); }};
}

}  // namespace llm::field_builders
