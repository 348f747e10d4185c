// defines: save_peft_adapter, load_peft_adapter, save_merged_model
#include "model/peft_adapter.h"

#include <fmt/core.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/user_error.h"
#include "io/durable_file.h"
#include "io/hf_hub_cache.h"
#include "io/json_text.h"
#include "io/safetensors.h"
#include "model/hf_checkpoint.h"
#include "model/lora_init.h"

namespace llm {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
const std::string kPeftPrefix = "base_model.model.";

// The shortest decimal that reads back as the float, as Python writes the value a config gave
// (0.05, where the float widened to double would write 0.05000000074505806).
json decimal(float v) { return json(std::strtod(fmt::format("{}", v).c_str(), nullptr)); }

// A whole number as a JSON integer (as PEFT writes r and usually lora_alpha), else a decimal.
json number(float v) {
  return v == static_cast<float>(static_cast<int64_t>(v)) ? json(static_cast<int64_t>(v)) : decimal(v);
}

// The member `key`, null when absent. json::value with a typed default would throw type_error
// for a value of another type ("r": "8"): bad input to refuse in one line, not a fatal error.
json member(const json& config, const char* key) {
  const auto it = config.find(key);
  return it == config.end() ? json() : *it;
}

// A boolean member, false when absent (PEFT's default for each flag we read).
bool flag(const json& config, const char* key, const std::string& path) {
  const json v = member(config, key);
  if (!v.is_null() && !v.is_boolean())
    throw UserError(path + ": " + key + ": expected true or false, got " + v.dump());
  return !v.is_null() && v.get<bool>();
}
// rank_pattern / alpha_pattern as PEFT writes them: {pattern: value}, keys sorted as PEFT's
// save_pretrained sorts every key (a reload takes the first match in that order, which can differ
// from the config's where two patterns name one module: PEFT's own behaviour).
template <typename Value>
json patterns_json(const std::vector<std::pair<std::string, Value>>& patterns) {
  json out = json::object();
  for (const auto& [key, value] : patterns) out[key] = number(static_cast<float>(value));
  return out;
}

// Whether the file's pattern map holds exactly `patterns`, order aside.
template <typename Value>
bool same_patterns(const json& file, const std::vector<std::pair<std::string, Value>>& patterns) {
  if (file.is_null()) return patterns.empty();
  if (!file.is_object() || file.size() != patterns.size()) return false;
  for (const auto& [key, value] : patterns) {
    const auto it = file.find(key);
    if (it == file.end() || !it->is_number() || it->template get<float>() != static_cast<float>(value)) return false;
  }
  return true;
}
// trainable_token_indices as PEFT keeps it: a list (embed_tokens' rows), a map of each table's
// rows, or null.
json token_rows_json(const LoraConfig& lora) {
  if (!lora.trains_token_rows()) return nullptr;
  if (lora.token_rows_listed) return lora.embed_token_rows;
  json rows = json::object();
  if (!lora.embed_token_rows.empty()) rows["embed_tokens"] = lora.embed_token_rows;
  if (!lora.head_token_rows.empty()) rows["lm_head"] = lora.head_token_rows;
  return rows;
}

// The rows a file's trainable_token_indices trains, (embed_tokens', lm_head's), the latter
// dropped where a tied lm_head reads the former's; nullopt when it is no list or map of them.
std::optional<std::pair<std::vector<int64_t>, std::vector<int64_t>>> file_token_rows(const json& v, bool tied) {
  auto ids = [](const json& list) -> std::optional<std::vector<int64_t>> {
    if (!list.is_array()) return std::nullopt;
    std::vector<int64_t> out;
    for (const json& id : list) {
      if (!id.is_number_integer()) return std::nullopt;
      out.push_back(id.get<int64_t>());
    }
    return out;
  };
  std::pair<std::vector<int64_t>, std::vector<int64_t>> rows;
  if (v.is_null()) return rows;
  if (v.is_array()) {
    const auto embed = ids(v);
    if (!embed) return std::nullopt;
    rows.first = *embed;
    return rows;
  }
  if (!v.is_object()) return std::nullopt;
  for (const auto& [key, list] : v.items()) {
    const auto table = ids(list);
    if (!table || (key != "embed_tokens" && key != "lm_head")) return std::nullopt;
    (key == "embed_tokens" ? rows.first : rows.second) = *table;
  }
  if (tied && rows.second == rows.first) rows.second.clear();
  return rows;
}

// PEFT's init_lora_weights: a boolean, or the init's name.
json init_json(const std::string& init) {
  return init == "true" || init == "false" ? json(init == "true") : json(init);
}

}  // namespace

void save_peft_adapter(LlamaModel& model, const std::string& dir, const std::string& base_model,
                       DType dtype) {
  const LoraConfig& lora = *model.lora();
  std::vector<NamedTensor> tensors;
  for (const ParamRef& p : model.trainable_parameters()) tensors.push_back({kPeftPrefix + p.name, *p.tensor});
  fs::create_directories(dir);
  write_safetensors((fs::path(dir) / kPeftWeightsFile).string(), tensors, dtype);
  // PEFT's LoraConfig fields; those we do not use keep PEFT's defaults so PEFT reads it as is.
  json config = {
      {"peft_type", "LORA"},
      // Axolotl's task for the model's class: a sequence (token) classifier's adapter is PEFT's SEQ_CLS (TOKEN_CLS).
      {"task_type", model.config().num_labels == 0 ? "CAUSAL_LM" : model.config().token_classification ? "TOKEN_CLS" : "SEQ_CLS"},
      // PEFT writes the name from_pretrained was given: a hub id for a cached snapshot.
      {"base_model_name_or_path", hub_id_of_snapshot(base_model).value_or(base_model)},
      {"r", lora.r},
      {"lora_alpha", number(lora.alpha)},
      {"lora_dropout", decimal(lora.dropout)},
      {"target_modules", lora.target_pattern.empty() ? json(lora.targets()) : json(lora.target_pattern)},
      {"modules_to_save", lora.modules_to_save.empty() ? json(nullptr) : json(lora.modules_to_save)},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"inference_mode", true},
      {"init_lora_weights", init_json(lora.init)},
      {"use_rslora", lora.use_rslora},
      {"use_dora", lora.use_dora},
      {"layers_to_transform", lora.layers.empty() ? json(nullptr) : json(lora.layers)},
      {"layers_pattern", nullptr},
      {"rank_pattern", patterns_json(lora.rank_pattern)},
      {"alpha_pattern", patterns_json(lora.alpha_pattern)},
      {"trainable_token_indices", token_rows_json(lora)},
      {"layer_replication", lora.layer_replication.empty() ? json(nullptr) : json(lora.layer_replication)},
      {"revision", nullptr},
  };
  // Written only when set, as PEFT versions before the field do not know it.
  if (lora.ensure_weight_tying) config["ensure_weight_tying"] = true;
  write_text_atomically((fs::path(dir) / kPeftConfigFile).string(), config.dump(2) + "\n");
}

void load_peft_adapter(LlamaModel& model, const std::string& dir) {
  const LoraConfig& lora = *model.lora();
  const std::string config_path = (fs::path(dir) / kPeftConfigFile).string();
  const json config = read_json_file(config_path, "PEFT's adapter_config.json");
  auto disagree = [&config_path](const std::string& key, const std::string& file_value,
                                 const std::string& ours) {
    throw UserError(config_path + ": " + key + ": expected " + ours + " as the config asks, got " + file_value);
  };
  if (!config.is_object())
    throw UserError(config_path + ": expected a JSON object, got a JSON " + std::string(config.type_name()));
  if (member(config, "peft_type") != "LORA") disagree("peft_type", member(config, "peft_type").dump(), "LORA");
  if (member(config, "r") != json(lora.r))  // json compares 8 and 8.0 as numbers
    disagree("r", member(config, "r").dump(), std::to_string(lora.r) + " (lora_r)");
  const json alpha = member(config, "lora_alpha");
  if (!alpha.is_number() || alpha.get<float>() != lora.alpha)  // as float: PEFT writes 0.1 as a double
    disagree("lora_alpha", alpha.dump(), number(lora.alpha).dump());
  if (!same_patterns(member(config, "rank_pattern"), lora.rank_pattern))
    disagree("rank_pattern", member(config, "rank_pattern").dump(), patterns_json(lora.rank_pattern).dump() + " (lora_rank_pattern)");
  if (!same_patterns(member(config, "alpha_pattern"), lora.alpha_pattern))
    disagree("alpha_pattern", member(config, "alpha_pattern").dump(), patterns_json(lora.alpha_pattern).dump() + " (lora_alpha_pattern)");
  // An init that changed the base (PiSSA, OLoRA) leaves it the residual, which PEFT's loading
  // makes afresh from the file's init: the config's must be the same one. Other inits only
  // start the adapter that is read over them.
  const json init = member(config, "init_lora_weights");
  const bool file_from_base = init.is_string() && (lora_init_from_base(init.get<std::string>()) ||
                                                   init.get<std::string>().rfind("corda", 0) == 0 ||
                                                   init.get<std::string>() == "loftq");
  if ((file_from_base || lora_init_from_base(lora.init)) && init != init_json(lora.init))
    disagree("init_lora_weights", init.dump(), init_json(lora.init).dump() + " (peft_init_lora_weights)");
  const std::pair<const char*, bool> variants[] = {{"use_rslora", lora.use_rslora}, {"use_dora", lora.use_dora}};
  for (const auto& [name, ours] : variants)
    if (flag(config, name, config_path) != ours)
      disagree(name, ours ? "false" : "true", std::string(ours ? "true" : "false") + " (peft_" + std::string(name) + ")");
  for (const char* name : {"fan_in_fan_out", "lora_bias"})
    if (flag(config, name, config_path)) disagree(name, "true", "false (not built)");
  // PEFT's layers_to_transform: null (every block), one index or a list; its layers_pattern
  // names the module list the index counts in, which for Llama is "layers".
  const json layers = member(config, "layers_to_transform");
  std::set<int64_t> file_layers;
  for (const json& l : layers.is_array() ? layers : layers.is_null() ? json::array() : json::array({layers})) {
    if (!l.is_number_integer()) disagree("layers_to_transform", layers.dump(), "null, a block index or a list of them");
    file_layers.insert(l.get<int64_t>());
  }
  if (file_layers != std::set<int64_t>(lora.layers.begin(), lora.layers.end()))
    disagree("layers_to_transform", layers.dump(),
             (lora.layers.empty() ? std::string("null") : json(lora.layers).dump()) + " (peft_layers_to_transform)");
  const json pattern = member(config, "layers_pattern");
  if (!pattern.is_null() && pattern != json("layers") && pattern != json::array({"layers"}))
    disagree("layers_pattern", pattern.dump(), "null or \"layers\" (Llama's block list)");
  const auto token_rows = file_token_rows(member(config, "trainable_token_indices"), model.config().tie_word_embeddings);
  if (!token_rows || token_rows->first != lora.embed_token_rows || token_rows->second != lora.head_token_rows)
    disagree("trainable_token_indices", member(config, "trainable_token_indices").dump(),
             token_rows_json(lora).dump() + " (peft_trainable_token_indices)");
  // PEFT's layer_replication: [[start, end], ...] as JSON lists (nlohmann's pairs compare alike).
  const json replication = member(config, "layer_replication");
  const json ours_replication = lora.layer_replication.empty() ? json(nullptr) : json(lora.layer_replication);
  if (replication != ours_replication && !(replication.is_array() && replication.empty() && ours_replication.is_null()))
    disagree("layer_replication", replication.dump(), ours_replication.dump() + " (peft_layer_replication)");
  const json file_targets = member(config, "target_modules");
  if (!lora.target_pattern.empty() || file_targets.is_string()) {  // one regular expression
    if (file_targets != json(lora.target_pattern))
      disagree("target_modules", file_targets.dump(),
               lora.target_pattern.empty() ? json(lora.targets()).dump() : json(lora.target_pattern).dump());
  } else {
    std::set<std::string> targets;
    if (file_targets.is_array())
      for (const json& t : file_targets) targets.insert(t.is_string() ? t.get<std::string>() : t.dump());
    const std::vector<std::string> ours = lora.targets();
    if (targets != std::set<std::string>(ours.begin(), ours.end()))
      disagree("target_modules", file_targets.dump(), json(ours).dump());
  }

  const SafetensorsFile file((fs::path(dir) / kPeftWeightsFile).string());
  const std::vector<ParamRef> params = model.trainable_parameters();
  std::set<std::string> wanted;
  for (const ParamRef& p : params) wanted.insert(kPeftPrefix + p.name);
  for (const SafetensorsEntry& e : file.entries())
    if (!wanted.count(e.name))
      throw UserError(file.path() + ": tensor " + e.name + " is not a trainable tensor of this adapter config");
  for (const ParamRef& p : params) {
    const SafetensorsEntry* e = file.find(kPeftPrefix + p.name);
    if (!e) throw UserError(file.path() + ": tensor " + kPeftPrefix + p.name + " is missing");
    if (e->shape != p.tensor->shape())
      throw UserError(file.path() + ": tensor " + e->name + " is " + shape_str(e->shape) +
                      " but the configured adapter needs " + shape_str(p.tensor->shape()));
  }
  for (const ParamRef& p : params) {
    const Tensor value = file.read(kPeftPrefix + p.name, DType::f32);
    require_finite_weight(value, file.path(), kPeftPrefix + p.name);
    p.tensor->copy_from(value);
  }
}

void save_merged_model(LlamaModel& model, const std::string& dir, DType dtype, HfTokenIds ids,
                       const BaseWeightStream& base) {
  std::map<std::string, std::pair<int64_t, int>> linears;  // HF name -> (layer, kind)
  for (int64_t i = 0; i < model.config().num_hidden_layers; i++)
    for (int k = 0; k < kNumLinear; k++)
      linears["model.layers." + std::to_string(i) + "." + linear_module_path(k) + ".weight"] = {i, k};
  // Every base weight, those held only as NF4 or int8 codes included: a merged model lacking its
  // block linears would load with random ones.
  const std::vector<BaseWeight> weights = model.base_weights();
  std::vector<TensorEntry> table;
  for (const BaseWeight& w : weights)
    table.push_back({w.ref.name, w.ref.tensor->defined() ? w.ref.tensor->dtype() : DType::f32, w.shape});
  // The merged value of base weight `ref`, `value` being its unquantised value when known.
  auto merged = [&](const ParamRef& ref, const Tensor* value) {
    const auto linear = linears.find(ref.name);
    if (linear == linears.end()) return model.merged_token_rows(ref.name, *ref.tensor);
    const auto [layer, kind] = linear->second;
    return value && !ref.tensor->defined() ? model.merged_weight(layer, kind, *value) : model.merged_weight(layer, kind);
  };
  // Each merged weight made as it is written and dropped after: never the whole merged model
  // beside the base.
  save_hf_tensors(model.config(), table, [&](const TensorSink& put) {
    if (base) {
      base([&](const ParamRef& ref, const Tensor& value) { put(ref.name, merged(ref, &value)); });
      return;
    }
    for (const BaseWeight& w : weights) put(w.ref.name, merged(w.ref, nullptr));
  }, dir, dtype, ids);
}

}  // namespace llm
