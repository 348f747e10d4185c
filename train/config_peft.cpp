// defines: peft_rows (PEFT's LoraConfig options beyond r, alpha, dropout and targets:
// lora_rank_pattern / lora_alpha_pattern, peft_init_lora_weights, peft_trainable_token_indices,
// peft_layer_replication,
// and the two whose one built value is PEFT's default, peft_autocast_adapter_dtype and
// peft_layers_pattern), check_trainable_token_rows, check_layer_replication,
// check_init_from_base
#include <algorithm>
#include <regex>
#include <type_traits>

#include <fmt/format.h>

#include "engine/user_error.h"
#include "model/lora_init.h"
#include "train/config_field_builders.h"
#include "train/config_fields.h"

namespace llm {
namespace {
// A pattern map's key: a module-name pattern that must compile, as PEFT's re.match would.
std::string read_module_pattern(const std::string& key, const Where& w) {
  check_pattern(key, w, "a regular expression of module names as the key");
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
// the untrained adapter already changes the model), gaussian (A normal with std 1/r), or the inits
// from the base weight, pissa, pissa_niter_K and olora (model/lora_init.h).
void read_init_lora_weights(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  const std::string expected = "true, false, gaussian, pissa, pissa_niter_K or olora (PEFT's other inits, eva, "
                               "corda, loftq, orthogonal, ..., are not built)";
  if (!n.IsScalar()) fail(w, expected, describe(n));
  if (n.Scalar() == "gaussian" || lora_init_from_base(n.Scalar())) {
    ctx.config.lora.init = n.Scalar();
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

// A list of token ids, each once: PEFT's index_copy of a repeated row keeps either value.
std::vector<int64_t> read_token_rows(const YAML::Node& n, const Where& w) {
  if (!n.IsSequence() || n.size() == 0) fail(w, "a non-empty list of token ids", describe(n));
  std::vector<int64_t> rows;
  for (size_t i = 0; i < n.size(); i++) {
    const Where wi = w.child("[" + std::to_string(i) + "]", n[i]);
    const int64_t id = read_int(n[i], wi, 0);
    if (std::count(rows.begin(), rows.end(), id) > 0) fail(wi, "each token id once", std::to_string(id) + " again");
    rows.push_back(id);
  }
  return rows;
}

// PEFT's trainable_token_indices: a list (embed_tokens' rows) or a map {embed_tokens: [ids],
// lm_head: [ids]}.
void read_trainable_token_indices(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  LoraConfig& lora = ctx.config.lora;
  lora.embed_token_rows.clear();
  lora.head_token_rows.clear();
  lora.token_rows_listed = !n.IsMap();
  if (!n.IsMap()) {
    lora.embed_token_rows = read_token_rows(n, w);
    return;
  }
  if (n.size() == 0) fail(w, "a non-empty list of token ids or a map {embed_tokens: [ids], lm_head: [ids]}", "{}");
  for_fields(n, w, "a list of token ids or a map {embed_tokens: [ids], lm_head: [ids]}",
             [&](const std::string& key, const YAML::Node& v, const Where& wk) {
               if (key == "embed_tokens") lora.embed_token_rows = read_token_rows(v, wk);
               else if (key == "lm_head") lora.head_token_rows = read_token_rows(v, wk);
               else fail(wk, "embed_tokens or lm_head (the tables whose rows train)", "'" + key + "'");
             });
}

std::string write_token_rows(const std::vector<int64_t>& rows) {
  std::string out;
  for (int64_t id : rows) out += (out.empty() ? "[" : ", ") + std::to_string(id);
  return out + "]";
}

std::string write_trainable_token_indices(const TrainConfig& c) {
  const LoraConfig& lora = c.lora;
  if (!lora.trains_token_rows()) return "";
  if (lora.token_rows_listed) return write_token_rows(lora.embed_token_rows);
  std::string fields;
  if (!lora.embed_token_rows.empty()) fields = "embed_tokens: " + write_token_rows(lora.embed_token_rows);
  if (!lora.head_token_rows.empty())
    fields += (fields.empty() ? "" : ", ") + std::string("lm_head: ") + write_token_rows(lora.head_token_rows);
  return "{" + fields + "}";
}

// PEFT's layer_replication: a list of [start, end) pairs of block indices, start < end ([] none).
void read_layer_replication(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  const char* expected = "a list of [start, end] block ranges, 0 <= start < end";
  if (!n.IsSequence()) fail(w, expected, describe(n));
  std::vector<std::pair<int64_t, int64_t>> ranges;  // empty: none, as PEFT and Axolotl read []
  for (const YAML::Node& range : n) {
    if (!range.IsSequence() || range.size() != 2) fail(w, expected, describe(range));
    const int64_t start = read_int(range[0], w, 0, kMaxLayers), end = read_int(range[1], w, 0, kMaxLayers);
    if (start >= end) fail(w, expected, "[" + std::to_string(start) + ", " + std::to_string(end) + "]");
    ranges.emplace_back(start, end);
  }
  ctx.config.lora.layer_replication = ranges;
}

std::string write_layer_replication(const TrainConfig& c) {
  std::string out;
  for (const auto& [start, end] : c.lora.layer_replication)
    out += (out.empty() ? "[" : ", ") + fmt::format("[{}, {}]", start, end);
  return out.empty() ? out : out + "]";
}

}  // namespace

void check_layer_replication(const TrainConfig& c, const Where& w) {
  if (c.adapter.empty()) fail(w, "adapter: lora or qlora with it (each replicated block gets adapters of its own)", "no adapter");
  for (const auto& [start, end] : c.lora.layer_replication)
    if (end > c.model.num_hidden_layers)
      fail(w, "ranges within the base's num_hidden_layers, " + std::to_string(c.model.num_hidden_layers),
           fmt::format("[{}, {}]", start, end));
  if (const int64_t blocks = c.lora.replicated_layers(c.model.num_hidden_layers); blocks > kMaxLayers)
    fail(w, "at most " + std::to_string(kMaxLayers) + " blocks in all", std::to_string(blocks));
  // PEFT refuses to merge into shared weights; ReLoRA merges each period; a sharded start-up
  // has no whole block to share; preference training's reference is not built over copies.
  if (c.merge_lora) fail(w, "no merge_lora with it (PEFT cannot merge adapters into shared base weights)", "merge_lora: true");
  if (c.relora) fail(w, "no relora with it (ReLoRA merges into the shared base weights)", "relora: true");
  if (c.zero_stage == 3) fail(w, "zero_stage below 3 with it (not built under ZeRO-3)", "zero_stage 3");
  if (!c.rl.empty()) fail(w, "no rl with it (not built for preference training)", "rl: " + c.rl);
}

void check_init_from_base(const TrainConfig& c, const Where& w) {
  const std::string& init = c.lora.init;
  if (c.adapter.empty()) fail(w, "adapter: lora with " + init, "no adapter");
  // PEFT refuses PiSSA on a quantised weight (its residual is to be quantised after); OLoRA's
  // dequantise-and-requantise is not built.
  if (c.quantized_base())
    fail(w, "a float base with " + init + " (PEFT inits PiSSA in f32, f16 or bf16 only; OLoRA on quantised codes is "
         "not built)", c.load_in_4bit ? "load_in_4bit" : "load_in_8bit");
  // A sharded start-up holds no whole weight to decompose; copies share the weight each copy's
  // init would change; ReLoRA's restarts draw Kaiming adapters.
  if (c.zero_stage == 3) fail(w, "zero_stage below 3 with " + init + " (not built under ZeRO-3)", "zero_stage 3");
  if (!c.lora.layer_replication.empty())
    fail(w, "no peft_layer_replication with " + init + " (each copy would change the shared base weight)",
         "peft_layer_replication");
  if (c.relora) fail(w, "no relora with " + init + " (ReLoRA's restarts draw Kaiming adapters)", "relora: true");
  // TRL's reference is the model with its adapters disabled, which here would be the residual
  // alone; ours is the starting model (the adapters' B A included), which only a zero B makes the same.
  if (!c.rl.empty())
    fail(w, "no rl with " + init + " (TRL's reference, the adapters disabled, would be the residual base alone: not "
         "built)", "rl: " + c.rl);
}

void check_trainable_token_rows(TrainConfig& c, const Where& w) {
  LoraConfig& lora = c.lora;
  if (c.adapter.empty()) fail(w, "adapter: lora or qlora with it (PEFT's LoRA trains the rows)", "no adapter");
  if (c.model.tie_word_embeddings) {
    // PEFT ties lm_head's rows to the embedding's when both name the same (or lm_head none).
    if (!lora.head_token_rows.empty() && lora.head_token_rows != lora.embed_token_rows)
      fail(w, "on a tied model the rows of embed_tokens alone (lm_head reads them, as PEFT ties them when both "
           "name the same rows; two trained copies of one tied table are not built)", "lm_head rows of their own");
    lora.head_token_rows.clear();
    if (lora.saves("embed_tokens") || lora.saves("lm_head"))
      fail(w, "no lora_modules_to_save beside it on a tied model (the table would train whole; PEFT refuses both)",
           "lora_modules_to_save too");
  }
  if (!lora.embed_token_rows.empty() && lora.saves("embed_tokens"))
    fail(w, "no embed_tokens rows with lora_modules_to_save: [embed_tokens] (PEFT refuses both)", "both");
  if (!lora.head_token_rows.empty() && lora.saves("lm_head"))
    fail(w, "no lm_head rows with lora_modules_to_save: [lm_head] (PEFT refuses both)", "both");
  // A sharded start-up has no table to take the rows' first values from; ReLoRA merges linears
  // only; preference training's reference is the model without adapters.
  if (c.zero_stage == 3) fail(w, "zero_stage below 3 with it (not built under ZeRO-3)", "zero_stage 3");
  if (c.relora) fail(w, "no relora with it (ReLoRA's restarts merge the block linears only)", "relora: true");
  if (!c.rl.empty()) fail(w, "no rl with it (not built for preference training)", "rl: " + c.rl);
}

void resolve_tied_modules_to_save(TrainConfig& c, const Where& w) {
  if (!c.unties_embeddings()) return;
  if (c.zero_stage == 3) fail(w, "zero_stage below 3 with it on a tied model (its untied copies are not built under "
                                 "ZeRO-3), or peft_ensure_weight_tying: true", "zero_stage 3");
  c.adjustments.push_back(
      "lora_modules_to_save on a tied model: embed_tokens and lm_head untied, each listed one trained as a copy of "
      "its own, the other frozen at the base's table, as PEFT's (peft_ensure_weight_tying: true trains the one shared "
      "table)");
}

std::vector<ConfigField> peft_rows(const char* section) {
  return {
      field_builders::flag("peft_ensure_weight_tying", section, MEMBER(lora.ensure_weight_tying),
           "PEFT's ensure_weight_tying: on a tied model lora_modules_to_save trains the one shared table; false (PEFT's "
           "default): the embedding and lm_head are untied and each listed one trains as a copy of its own"),
      {"lora_rank_pattern", section, "a map {module-name pattern: rank}",
       "per-module ranks (PEFT's rank_pattern): the first pattern matching the end of a module's HF name",
       read_lora_rank_pattern, write_lora_rank_pattern},
      {"lora_alpha_pattern", section, "a map {module-name pattern: alpha}",
       "per-module alphas (PEFT's alpha_pattern), matched as lora_rank_pattern", read_lora_alpha_pattern,
       write_lora_alpha_pattern},
      {"peft_init_lora_weights", section, "true, false, gaussian, pissa, pissa_niter_K or olora",
       "PEFT's init_lora_weights: true, A uniform in +-1/sqrt(in) and B zero; false, B uniform in +-1/sqrt(r) too; "
       "gaussian, A normal with std 1/r and B zero; pissa (pissa_niter_K: torch.svd_lowrank's K iterations), the "
       "weight's r principal singular values and vectors; olora, its QR's first r; both leave the base the residual",
       read_init_lora_weights, [](const TrainConfig& c) { return c.lora.init == "true" ? std::string() : c.lora.init; }},
      {"peft_trainable_token_indices", section, "a list of token ids or a map {embed_tokens: [ids], lm_head: [ids]}",
       "PEFT's trainable_token_indices: these rows of the embedding (and of an untied lm_head) train as a tensor of "
       "their own, the rest of the table frozen; a tied lm_head reads the embedding's",
       read_trainable_token_indices, write_trainable_token_indices},
      {"peft_layer_replication", section, "a list of [start, end] block ranges",
       "PEFT's layer_replication: the blocks become each range's base blocks in turn (copies share their frozen "
       "weights), each with adapters of its own; peft_layers_to_transform and patterns count in them",
       read_layer_replication, write_layer_replication},
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
