// defines: attention_rows (the attention keys: flash_attention, xformers_attention, s2_attention,
// sdp_attention, Axolotl's flex_attention, and the choice by name, attn_implementation / attention;
// Axolotl's scaling_softmax (SSMax) and its factor and bias), resolve_attention (those choices
// settled into one, with the packing defaults and S2 checks that follow from it)
#include <algorithm>

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
  rows.push_back(field_builders::number("s2_group_size_ratio", section, MEMBER(s2_group_size_ratio), kRatio,
                                        "S2 group size as a fraction of sequence_len"));
  return rows;
}

// One attention implementation, whichever keys chose it. Several of Axolotl's legacy boolean flags
// are settled as Axolotl 0.19's normalize_attn_implementation settles them: the first in its
// priority (xformers, flex, flash, sdp, eager) is the one, said once at start-up; s2_attention
// rides on flash as below. attn_implementation and attention then must agree with that choice:
// two different choices are an error at the later key.
void resolve_attention(const ReadContext& ctx, const GivenKeys& keys) {
  TrainConfig& c = ctx.config;
  std::vector<ReadContext::AttentionChoice> chosen;
  std::vector<std::string> flags_set;
  for (const char* flag : {"xformers_attention", "flex_attention", "flash_attention", "sdp_attention", "eager_attention"})
    if (ctx.attention.count(flag)) flags_set.push_back(flag);
  if (!flags_set.empty()) {
    const ReadContext::AttentionChoice& first = ctx.attention.at(flags_set[0]);
    chosen.push_back(first);
    std::string others;
    for (size_t i = 1; i < flags_set.size(); i++)
      if (ctx.attention.at(flags_set[i]).kind != first.kind) others += " and " + flags_set[i];
    if (!others.empty())
      c.adjustments.push_back(flags_set[0] + others + " are all true: " + flags_set[0] +
                              " trains, the first in Axolotl's priority of its legacy attention flags (xformers, flex, "
                              "flash, sdp, eager); set only one, or attn_implementation");
  }
  for (const char* key : {"s2_attention", "attn_implementation", "attention"})
    if (auto it = ctx.attention.find(key); it != ctx.attention.end()) chosen.push_back(it->second);
  // Axolotl's s2_attention modifies flash: it patches LongLoRA's shifted groups into the flash
  // path, so its configs set both (without flash it raises). Flash beside s2 is that one choice.
  const bool s2 = std::any_of(chosen.begin(), chosen.end(), [](const auto& a) { return a.kind == AttentionKind::s2; });
  if (s2) chosen.erase(std::remove_if(chosen.begin(), chosen.end(),
                                      [](const auto& a) { return a.kind == AttentionKind::flash; }),
                       chosen.end());
  for (const auto& other : chosen)
    if (other.kind != chosen[0].kind)
      fail(other.where, "one attention implementation", chosen[0].label + " and " + other.label);
  c.attention = chosen.empty() ? AttentionKind::eager : chosen[0].kind;

  // Axolotl packs with sdp_attention, or eager attention asked for by name, through a
  // block-diagonal mask (so into bins of sequence_len, multipack_real_batches): the same exact
  // attention as flash over its documents, which the cuDNN graph and eager here do not mask.
  const bool masked = c.attention == AttentionKind::cudnn || (c.attention == AttentionKind::eager && !chosen.empty());
  // With no attention key at all Axolotl 0.19 packs too, warning that nothing keeps the packed
  // examples apart: transformers' default attention, causal over the whole row (positions
  // restarting at each example), in bins of sequence_len as with sdpa
  // (TrainConfig::packing_attends_across_documents; the attention stays eager in the config).
  const bool across = c.data.sample_packing && chosen.empty();
  default_packing_keys(c, masked || across, keys.given("multipack_real_batches"), keys.given("pad_to_sequence_len"));
  if (c.data.sample_packing && masked) c.attention = AttentionKind::flash;
  if (across)
    c.adjustments.push_back(
        "sample_packing without an attention key: as Axolotl 0.19, which warns that this does not keep the packed "
        "examples apart, each example attends to the ones before it in its row (each keeps its own positions); "
        "flash_attention, xformers_attention or sdp_attention masks them apart");
  if (c.data.sample_packing && c.attention == AttentionKind::s2)
    fail(keys.at("sample_packing"), "false with s2_attention (its groups would span documents)",
         "true");
  if (c.attention == AttentionKind::s2) {
    const auto group = static_cast<int64_t>(c.data.sequence_len * c.s2_group_size_ratio);
    if (group < 1 || c.data.sequence_len % group != 0)
      fail(keys.at("s2_group_size_ratio"),
           "a ratio whose group size divides sequence_len (" + std::to_string(c.data.sequence_len) + ")",
           num(c.s2_group_size_ratio) + " (group size " + std::to_string(group) + ")");
    // Evaluation groups its rows too (the trainer's options_for), and test_datasets' rows are
    // eval_sequence_len long when that is longer: Axolotl's patch raises where its group does not divide.
    const int64_t eval_len = c.data.eval_row_len();
    const auto eval_group = static_cast<int64_t>(eval_len * c.s2_group_size_ratio);
    if (eval_len != c.data.sequence_len && (eval_group < 1 || eval_len % eval_group != 0))
      fail(keys.at("eval_sequence_len"),
           "a length whose S2 group (s2_group_size_ratio " + num(c.s2_group_size_ratio) + " of it) divides it",
           std::to_string(eval_len) + " (group size " + std::to_string(eval_group) + ")");
  }
}

}  // namespace llm
