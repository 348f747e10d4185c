// defines: attention_rows (the attention keys: flash_attention, xformers_attention, s2_attention,
// sdp_attention, Axolotl's flex_attention, and the choice by name, attn_implementation / attention)
#include "model/attention_kind.h"
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
  // The same choice by name: HF's attn_implementation spelling, or Axolotl's newer `attention:`
  // key; the boolean rows carry it into the written YAML.
  auto by_name = [&](const char* key, const char* AttentionInfo::*spelling, const std::string& meaning) {
    std::vector<std::string> names;
    for (const AttentionInfo& info : kAttentionKinds) names.push_back(info.*spelling);
    rows.push_back({key, section, "one of " + join(names), meaning,
                    [key, spelling, names](ReadContext& ctx, const YAML::Node& n, const Where& w) {
                      const std::string name = read_choice(n, w, names);
                      for (const AttentionInfo& info : kAttentionKinds)
                        if (name == info.*spelling)
                          ctx.attention[key] = {info.kind, w, std::string(key) + ": " + name};
                    },
                    nullptr});
  };
  by_name("attn_implementation", &AttentionInfo::implementation,
          "HF's spelling of the attention choice (eager, sdpa, flash_attention_2, ...)");
  by_name("attention", &AttentionInfo::short_name, "Axolotl's newer spelling of it (flash, xformers, sdpa, ...)");
  return rows;
}

}  // namespace llm
