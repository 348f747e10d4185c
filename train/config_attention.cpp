// defines: attention_rows (the attention keys: flash_attention, xformers_attention, s2_attention,
// sdp_attention, Axolotl's flex_attention, and the choice by name, attn_implementation / attention;
// Axolotl's scaling_softmax (SSMax) and its factor and bias)
#include "model/attention_kind.h"
#include "train/config_field_builders.h"
#include "train/config_fields.h"

namespace llm {

// One row per boolean attention key of model/attention_kind.h's table. Each only records its
// choice: validate() resolves them (and attn_implementation) into TrainConfig::attention.
std::vector<ConfigField> attention_rows(const char* section) {
  std::vector<ConfigField> rows;
  for (const AttentionInfo& info : kAttentionKinds) {
    if (!info.config_key) continue;
    const std::string key = info.config_key;
    const AttentionKind kind = info.kind;
    rows.push_back({key, section, "true or false", std::string("attention: ") + info.label,
                    [key, kind](ReadContext& ctx, const YAML::Node& n, const Where& w) {
                      if (read_bool(n, w)) ctx.attention[key] = {kind, w, key + ": true"};
                    },
                    [kind](const TrainConfig& c) {
                      return std::string(c.attention == kind ? "true" : "false");
                    }});
  }
  // Axolotl's flex_attention (torch's FlexAttention with its document block masks) computes the
  // same exact attention as flash, which trains it; flash_attention's row writes the choice.
  rows.push_back({"flex_attention", section, "true or false",
                  "attention: torch's FlexAttention, the same exact attention with document masks (trained with flash)",
                  [](ReadContext& ctx, const YAML::Node& n, const Where& w) {
                    if (read_bool(n, w)) ctx.attention["flex_attention"] = {AttentionKind::flash, w, "flex_attention: true"};
                  },
                  nullptr});
  // Axolotl 0.19's eager_attention flag: the eager choice, said out loud.
  rows.push_back({"eager_attention", section, "true or false", "attention: eager (Axolotl's flag for the default)",
                  [](ReadContext& ctx, const YAML::Node& n, const Where& w) {
                    if (read_bool(n, w)) ctx.attention["eager_attention"] = {AttentionKind::eager, w, "eager_attention: true"};
                  },
                  nullptr});
  // The same choice by name: HF's attn_implementation spelling, or Axolotl's newer `attention:`
  // key; the boolean rows carry it into the written YAML. `aliases`: more names of one kind.
  using Alias = std::pair<const char*, AttentionKind>;
  auto by_name = [&](const char* key, const char* AttentionInfo::*spelling, const std::string& meaning,
                     const std::vector<Alias>& aliases) {
    std::vector<std::string> names;
    std::vector<Alias> all;
    for (const AttentionInfo& info : kAttentionKinds) all.emplace_back(info.*spelling, info.kind);
    all.insert(all.end(), aliases.begin(), aliases.end());
    for (const Alias& a : all) names.push_back(a.first);
    rows.push_back({key, section, "one of " + join(names), meaning,
                    [key, names, all](ReadContext& ctx, const YAML::Node& n, const Where& w) {
                      const std::string name = read_choice(n, w, names);
                      for (const Alias& a : all)
                        if (name == a.first) ctx.attention[key] = {a.second, w, std::string(key) + ": " + name};
                    },
                    nullptr});
  };
  // Axolotl 0.19's canonical names of exact attention kernels (FlashAttention 3 and 4, torch's
  // and the hub's builds, FlexAttention): all compute what flash computes, which trains them.
  by_name("attn_implementation", &AttentionInfo::implementation,
          "HF's spelling of the attention choice (eager, sdpa, flash_attention_2, ...); Axolotl's other exact "
          "kernels (flash_attention_3, flex_attention, ...) train with flash",
          {{"flash_attention_3", AttentionKind::flash},
           {"flash_attention_4", AttentionKind::flash},
           {"flash_attention_torch", AttentionKind::flash},
           {"flex_attention", AttentionKind::flash},
           {"kernels-community/flash-attn2", AttentionKind::flash},
           {"kernels-community/flash-attn3", AttentionKind::flash}});
  by_name("attention", &AttentionInfo::short_name, "Axolotl's newer spelling of it (flash, xformers, sdpa, ...)", {});
  // SSMax scales each query (model/llama.h), so every attention kernel takes it; Axolotl's patch
  // needs FlexAttention, which trains with flash here. Its factor and bias take 0 (or null) as
  // its default, as Axolotl's `scaling_softmax_factor or 0.43` does.
  rows.push_back(field_builders::flag("scaling_softmax", section, [](auto& c) -> auto& { return c.scaling_softmax; },
                                      "SSMax (arXiv 2501.19399): each query's attention scores times "
                                      "scaling_softmax_factor * log(n) + scaling_softmax_bias, n its position + 1 (>= 2)"));
  auto ssmax_number = [&](const char* key, float TrainConfig::*member, float fallback, const char* meaning) {
    rows.push_back({key, section, "a number (0: " + yaml_number(fallback) + ")", meaning,
                    [member, fallback](ReadContext& ctx, const YAML::Node& n, const Where& w) {
                      const auto v = static_cast<float>(read_double(n, w, {-kFloatMax, false, kFloatMax, false}));
                      ctx.config.*member = v == 0.0f ? fallback : v;
                    },
                    [member](const TrainConfig& c) { return yaml_number(c.*member); }});
  };
  ssmax_number("scaling_softmax_factor", &TrainConfig::scaling_softmax_factor, 0.43f, "SSMax's s (default 0.43)");
  ssmax_number("scaling_softmax_bias", &TrainConfig::scaling_softmax_bias, 0.0f, "SSMax's b (default 0)");
  return rows;
}

}  // namespace llm
