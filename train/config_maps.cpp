// defines: the readers and writers of the map-valued keys special_tokens, added_tokens_overrides, rope_scaling,
// gradient_checkpointing_kwargs, bnb_config_kwargs (Axolotl's BitsAndBytesConfig arguments of
// a qlora run), the list of maps lr_groups, the patterns of
// unfrozen_parameters, lora_target_modules (names or one pattern), peft_layers_to_transform's
// block indices and dpo_loss_weights; the field table in train/config_fields.cpp names them
#include "engine/user_error.h"
#include "model/rope_scaling.h"
#include "train/config_fields.h"

#include <algorithm>
#include <cerrno>
#include <map>
#include <regex>
#include <set>
#include <type_traits>

#include "train/unfrozen_parameters.h"

namespace llm {

void read_special_tokens(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  SpecialTokens& s = ctx.config.special_tokens;
  for_fields(n, w, "a map {bos_token, eos_token, pad_token}",
             [&](const std::string& key, const YAML::Node& v, const Where& wk) {
               if (key == "bos_token") s.bos_token = read_string(v, wk);
               else if (key == "eos_token") s.eos_token = read_string(v, wk);
               else if (key == "pad_token") s.pad_token = read_string(v, wk);
               // Axolotl adds these to the tokenizer (add_special_tokens), growing the vocabulary for
               // new ones: not built; `tokens` adds tokens so (as plain added tokens). (unk_token,
               // which Llama 3's byte-level BPE never emits, is listed unused.)
               else if (key == "additional_special_tokens" && !v.IsNull() && !(v.IsSequence() && v.size() == 0))
                 fail(wk, "none (a tokenizer's added special tokens are not built; list new tokens under `tokens`)",
                      v.IsScalar() ? v.Scalar() : "a list");
               else ctx.unknown.insert(wk.key);
             });
}

std::string write_special_tokens(const TrainConfig& c) {
  const SpecialTokens& s = c.special_tokens;
  std::string fields;
  for (const auto& [key, value] : {std::pair{"bos_token", &s.bos_token}, {"eos_token", &s.eos_token},
                                   {"pad_token", &s.pad_token}})
    if (!value->empty()) fields += (fields.empty() ? "" : ", ") + std::string(key) + ": " + yaml_string(*value);
  return fields.empty() ? "" : "{" + fields + "}";
}

void read_added_tokens_overrides(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  AddedTokensOverrides& overrides = ctx.config.added_tokens_overrides;
  overrides.clear();
  for_fields(n, w, "a map {token id: new name}", [&](const std::string& key, const YAML::Node& v, const Where& wk) {
    char* end = nullptr;
    errno = 0;
    const long long id = std::strtoll(key.c_str(), &end, 10);
    if (key.empty() || *end || errno || id < 0) fail(wk, "a token id (a whole number) as the key", "'" + key + "'");
    overrides[id] = read_string(v, wk);
  });
}

std::string write_added_tokens_overrides(const TrainConfig& c) {
  std::string fields;
  for (const auto& [id, name] : c.added_tokens_overrides)
    fields += (fields.empty() ? "" : ", ") + std::to_string(id) + ": " + yaml_string(name);
  return fields.empty() ? "" : "{" + fields + "}";
}

void read_rope_scaling(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  RopeConfig& rope = ctx.config.model.rope;
  if (n.IsNull()) {
    rope.factor = 0.0f;
    return;
  }
  RopeConfig s;
  // Not given: max_position_embeddings (read before this row), as transformers 5 fills it in.
  s.original_max_position_embeddings = static_cast<int>(ctx.config.model.max_position_embeddings);
  std::optional<RopeType> type;
  std::map<std::string, std::string> given;  // each key given, with its path for the unused list
  const Range kAtLeastOne{1, false, kInf, true};
  for_fields(n, w, std::string("a map {rope_type: ") + kRopeTypesBuilt + ", factor, ...} or null",
             [&](const std::string& key, const YAML::Node& v, const Where& wk) {
               given[key] = wk.key;
               const RopeScalingField* field = rope_scaling_field(key);
               if (key == "rope_type" || key == "type") {  // "type": older HF configs
                 const std::string name = read_string(v, wk);
                 type = rope_type_named(name);
                 if (!type)
                   fail(wk, std::string(kRopeTypesBuilt) + " (the scalings built; longrope is not)", "'" + name + "'");
               } else if (!field) {
                 ctx.unknown.insert(wk.key);
               } else if (field->number) {
                 s.*field->number = float(read_double(v, wk, field->at_least_one ? kAtLeastOne : kPositive));
               } else if (field->length) {
                 s.*field->length = static_cast<int>(read_int(v, wk, 1, kMaxPositions));
               } else {
                 s.*field->flag = read_bool(v, wk);
               }
             });
  if (!type) fail(w.child(".rope_type", n), kRopeTypesBuilt, "none");
  s.type = *type;
  // As transformers' rope validation (a KeyError), which the map reaches through Axolotl.
  for (const RopeScalingField& field : rope_scaling_fields(s.type))
    if (field.required && !given.count(field.key)) fail(w.child("." + std::string(field.key), n), rope_required_message(s.type), "none");
  if (const std::optional<RopeScalingProblem> problem = rope_scaling_problem(s)) fail(w, problem->expected, problem->got);
  // Another type's field reaches no frequency: listed unused, as transformers warns of keys its
  // type does not read.
  for (const auto& [key, path] : given) {
    const auto& own = rope_scaling_fields(s.type);
    if (rope_scaling_field(key) && std::none_of(own.begin(), own.end(), [&](const RopeScalingField& f) { return key == f.key; }))
      ctx.unknown.insert(path);
  }
  s.theta = rope.theta;  // rope_theta is a field of its own
  rope = s;
}

std::string write_rope_scaling(const TrainConfig& c) {
  const RopeConfig& r = c.model.rope;
  if (r.factor == 0.0f) return "null";
  std::string out = std::string("{rope_type: ") + rope_type_name(r.type);
  for_each_rope_value(r, [&](const char* key, auto value) {
    out += std::string(", ") + key + ": ";
    if constexpr (std::is_same_v<decltype(value), float>) out += yaml_number(value);
    else if constexpr (std::is_same_v<decltype(value), bool>) out += value ? "true" : "false";
    else out += std::to_string(value);
  });
  return out + "}";
}

// Axolotl's gradient_checkpointing: a boolean, or "offload" (its CPU-offloaded checkpoints);
// "offload_disk" would write them to disk, which is not built.
void read_gradient_checkpointing(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  TrainConfig& c = ctx.config;
  if (n.IsScalar() && n.Scalar() == "offload") {
    c.gradient_checkpointing = c.gradient_checkpointing_offload = true;
    return;
  }
  if (n.IsScalar() && n.Scalar() == "offload_disk")
    fail(w, "true, false or offload (checkpoints offloaded to disk are not built; offload keeps them in host memory)",
         "offload_disk");
  c.gradient_checkpointing = read_bool(n, w, " or offload");
  c.gradient_checkpointing_offload = false;
}

// Axolotl's activation_offloading, what its gradient_checkpointing: offload now stands for: true,
// legacy (its synchronous offloader) or hidden_states (the checkpoints' inputs) each keep the
// recompute segments' inputs in host memory here; disk is not built. Read after
// gradient_checkpointing, which it requires (Axolotl's validator refuses it without).
void read_activation_offloading(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  TrainConfig& c = ctx.config;
  const std::string expected = "true, false, legacy or hidden_states (activations offloaded to disk are not built)";
  const bool named = n.IsScalar() && (n.Scalar() == "legacy" || n.Scalar() == "hidden_states");
  if (n.IsScalar() && n.Scalar() == "disk") fail(w, expected, "disk");
  if (!named && !read_bool(n, w, ", legacy or hidden_states")) return;
  if (!c.gradient_checkpointing)
    fail(w, "gradient_checkpointing: true with it (Axolotl requires it)", "gradient_checkpointing: false");
  c.gradient_checkpointing_offload = true;
}

void read_checkpointing_kwargs(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  for_fields(n, w, "a map {use_reentrant, every_n_layers}",
             [&](const std::string& key, const YAML::Node& v, const Where& wk) {
               if (key == "use_reentrant") {
                 // Picks between PyTorch's two checkpoint implementations; our recompute
                 // segments have one behaviour, so the value is checked and then ignored.
                 read_bool(v, wk);
               } else if (key == "every_n_layers") {  // ours: recompute every n-th block only
                 ctx.config.gradient_checkpointing_every_n_layers = read_int(v, wk, 1);
               } else {
                 ctx.unknown.insert(wk.key);
               }
             });
}

// Axolotl's trl: TRL's trainer arguments. Its preference trainers read only trl.beta (over
// rl_beta); the rest are GRPO's, which is not built, and are listed as unused.
void read_trl(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  for_fields(n, w, "a map of TRL arguments {beta, ...}", [&](const std::string& key, const YAML::Node& v, const Where& wk) {
    if (key == "beta" && !v.IsNull()) ctx.config.rl_beta = read_double(v, wk, kPositive);
    else ctx.unknown.insert(wk.key);
  });
}

// Its other backends are refused before any key is read (train/config_unsupported.cpp).
void read_model_quantization_config(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  const std::string expected = "{backend: bnb, weight_dtype: nf4 or int8}";
  std::string dtype;
  for_fields(n, w, expected, [&](const std::string& key, const YAML::Node& v, const Where& wk) {
    if (key == "backend") read_choice(v, wk, {"bnb"});
    else if (key == "weight_dtype") dtype = read_choice(v, wk, {"nf4", "int8"});
    else fail(wk, expected, "the key " + key);  // Axolotl's model forbids others
  });
  if (dtype.empty()) fail(w, expected, "no weight_dtype");
  (dtype == "nf4" ? ctx.config.load_in_4bit : ctx.config.load_in_8bit) = true;
}

void read_dpo_loss_weights(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  if (!n.IsSequence() || n.size() == 0) fail(w, "a list of numbers, one per dpo_loss_type", describe(n));
  std::vector<double>& weights = ctx.config.dpo_loss_weights;
  weights.clear();
  for (size_t i = 0; i < n.size(); i++)
    weights.push_back(read_double(n[i], w.child("[" + std::to_string(i) + "]", n[i]), {-kInf, true, kInf, true}));
}

std::string write_dpo_loss_weights(const TrainConfig& c) {
  std::string out;
  for (double v : c.dpo_loss_weights) out += (out.empty() ? "" : ", ") + yaml_number(v);
  return c.dpo_loss_weights.empty() ? std::string() : "[" + out + "]";
}

void read_bnb_config_kwargs(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  for_fields(n, w, "a map {bnb_4bit_quant_type: nf4, bnb_4bit_use_double_quant}",
             [&](const std::string& key, const YAML::Node& v, const Where& wk) {
               if (key == "bnb_4bit_quant_type") {
                 if (v.IsScalar() && v.Scalar() == "fp4")
                   fail(wk, "nf4 (bitsandbytes' fp4 4-bit type is not built)", "fp4");
                 read_choice(v, wk, {"nf4"});
               } else if (key == "bnb_4bit_use_double_quant") {
                 ctx.config.bnb_4bit_use_double_quant = read_bool(v, wk);
               } else {
                 // bnb_4bit_compute_dtype follows bf16; bnb_4bit_quant_storage and llm_int8_*
                 // change nothing for NF4 weights stored as bytes.
                 ctx.unknown.insert(wk.key);
               }
             });
}

std::string write_bnb_config_kwargs(const TrainConfig& c) {
  if (!c.load_in_4bit) return "";
  return std::string("{bnb_4bit_quant_type: nf4, bnb_4bit_use_double_quant: ") +
         (c.bnb_4bit_use_double_quant ? "true" : "false") + "}";
}

// PEFT's layers_to_transform takes one index or a list; the config's check bounds them by the
// model's block count.
// lora_target_modules: a list of kLinearModules' names, or (PEFT's other form) one regular
// expression, checked for syntax here and against the model's module names by validate().
// PEFT matches a list's entries as suffixes of module names: the two that name one linear in
// every block are its name and its path in the block ("q_proj", "self_attn.q_proj").
void read_lora_target_modules(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  const std::vector<std::string> names(kLinearModules, kLinearModules + kNumLinear);
  if (!n.IsScalar()) {
    const std::string expected = "a list of " + join(names) + " (or their paths, as self_attn.q_proj), or one "
                                 "regular expression of module names";
    std::vector<std::string> targets;
    for (const std::string& s : read_string_list(n, w)) {
      int kind = -1;
      for (int k = 0; k < kNumLinear; k++)
        if (s == kLinearModules[k] || s == linear_module_path(k)) kind = k;
      if (kind < 0) fail(w, expected, "'" + s + "'");
      targets.push_back(kLinearModules[kind]);
    }
    ctx.config.lora.target_modules = targets;
    return;
  }
  const std::string pattern = read_string(n, w);
  check_pattern(pattern, w, "a list of module names, or one valid regular expression");
  ctx.config.lora.target_pattern = pattern;
}

void read_peft_layers(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  std::vector<int64_t>& layers = ctx.config.lora.layers;
  layers.clear();
  if (n.IsScalar()) {
    layers.push_back(read_int(n, w, 0));
    return;
  }
  if (!n.IsSequence() || n.size() == 0) fail(w, "a block index or a non-empty list of them", describe(n));
  for (size_t i = 0; i < n.size(); i++) layers.push_back(read_int(n[i], w.child("[" + std::to_string(i) + "]", n[i]), 0));
}

void read_lr_groups(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  const std::string expected = "a list of {name, modules: [name parts], lr}";
  if (!n.IsSequence()) fail(w, expected, describe(n));
  std::vector<TrainConfig::LrGroup> groups;
  for (size_t i = 0; i < n.size(); i++) {
    const Where wi = w.child("[" + std::to_string(i) + "]", n[i]);
    TrainConfig::LrGroup g;
    bool has_lr = false;
    for_fields(n[i], wi, "a map {name, modules, lr}", [&](const std::string& key, const YAML::Node& v, const Where& wk) {
      if (key == "name") g.name = read_string(v, wk);
      else if (key == "modules") g.modules = read_string_list(v, wk);
      else if (key == "lr") g.lr = read_double(v, wk, kPositive), has_lr = true;
      else ctx.unknown.insert(wk.key);
    });
    if (g.name.empty()) fail(wi.child(".name", n[i]), "a group name", "none");
    if (g.modules.empty()) fail(wi.child(".modules", n[i]), "a non-empty list of name parts", "none");
    if (!has_lr) fail(wi.child(".lr", n[i]), "a learning rate > 0", "none");
    groups.push_back(std::move(g));
  }
  ctx.config.lr_groups = std::move(groups);
}

std::string write_lr_groups(const TrainConfig& c) {
  std::string y;
  for (const TrainConfig::LrGroup& g : c.lr_groups)
    y += (y.empty() ? "" : ", ") + std::string("{name: ") + yaml_string(g.name) + ", modules: " + yaml_list(g.modules) +
         ", lr: " + yaml_number(g.lr) + "}";
  return y.empty() ? "" : "[" + y + "]";
}

void read_unfrozen_parameters(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  std::vector<std::string> patterns = read_string_list(n, w);
  for (size_t i = 0; i < patterns.size(); i++) {
    // read_string_list also takes one string for a list of it.
    const Where wi = n.IsSequence() ? w.child("[" + std::to_string(i) + "]", n[i]) : w;
    // std::regex compiles recursively: a bound on the length bounds its depth.
    if (patterns[i].size() > kMaxPatternLength)
      fail(wi, "a pattern of at most " + std::to_string(kMaxPatternLength) + " characters", std::to_string(patterns[i].size()));
    UnfreezePattern parsed;
    try {
      parsed = parse_unfreeze_pattern(patterns[i]);
    } catch (const UserError& e) {
      fail(wi, e.what(), "'" + patterns[i] + "'");
    }
    try {
      unfreeze_regex(parsed.regex);
    } catch (const std::regex_error& e) {
      fail(wi, "a regular expression", "'" + patterns[i] + "' (" + e.what() + ")");
    }
  }
  ctx.config.unfrozen_parameters = std::move(patterns);
}

}  // namespace llm
