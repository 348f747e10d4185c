// defines: is_hf_model_dir, read_hf_config, hf_config_json, hf_generation_config_json (model/hf_config.h)
#include "model/hf_config.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <type_traits>

#include "engine/user_error.h"
#include "io/json_text.h"
#include "model/rope_scaling.h"

namespace llm {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string shortest(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Typed access to config.json's fields; a JSON null counts as absent, as transformers reads it.
class ConfigFields {
 public:
  // prefix: where j sits in the file ("rope_scaling." for its fields), for messages.
  ConfigFields(const json& j, const std::string& path, const std::string& prefix = "")
      : j_(j), path_(path), prefix_(prefix) {}

  const json* get(const std::string& key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  [[noreturn]] void fail(const std::string& key, const std::string& expected) const {
    const json* v = get(key);
    throw UserError(path_ + ": " + prefix_ + key + ": expected " + expected + ", got " +
                    (v ? v->dump() : "none"));
  }
  // An integer in [1, max] (the bounds of model/llama_config.h).
  int64_t integer(const std::string& key, int64_t max,
                  std::optional<int64_t> fallback = std::nullopt) const {
    const json* v = get(key);
    if (!v && fallback) return *fallback;
    if (!v || !v->is_number_integer() || v->get<int64_t>() < 1 || v->get<int64_t>() > max)
      fail(key, "an integer in [1, " + std::to_string(max) + "]");
    return v->get<int64_t>();
  }
  // A number > 0 that is finite as a float, where it lands.
  float positive(const std::string& key, float fallback) const {
    const json* v = get(key);
    if (!v) return fallback;
    constexpr double kMax = std::numeric_limits<float>::max();
    if (!v->is_number() || v->get<double>() <= 0 || v->get<double>() > kMax)
      fail(key, "a number in (0, " + shortest(kMax) + "]");
    return v->get<float>();
  }
  bool flag(const std::string& key, bool fallback) const {
    const json* v = get(key);
    if (!v) return fallback;
    if (!v->is_boolean()) fail(key, "true or false");
    return v->get<bool>();
  }
  // A string field this engine supports only one value of (absent is fine).
  void require_text(const std::string& key, const std::string& value,
                    const std::string& why) const {
    const json* v = get(key);
    if (v && !(v->is_string() && v->get<std::string>() == value))
      fail(key, value + " (" + why + ")");
  }

 private:
  const json& j_;
  std::string path_, prefix_;
};

// rope_scaling (transformers 4) or rope_parameters (transformers 5, where rope_theta moved in):
// one of the scalings of model/rope_scaling.h, or "default", which is no scaling. With both, rope_scaling, as
// transformers 5's convert_rope_params_to_dict takes `rope_scaling or rope_parameters`.
RopeConfig read_rope(const ConfigFields& f, const std::string& path, int64_t max_position_embeddings) {
  RopeConfig rope;
  rope.theta = f.positive("rope_theta", 10000.0f);  // HF LlamaConfig's default
  const json* legacy = f.get("rope_scaling");
  const bool legacy_set = legacy && !(legacy->is_object() && legacy->empty());
  const char* key = legacy_set || !f.get("rope_parameters") ? "rope_scaling" : "rope_parameters";
  const json* scaling = f.get(key);
  if (!scaling) return rope;  // factor 0: no scaling
  const std::string prefix = std::string(key) + ".";
  if (!scaling->is_object()) f.fail(key, "an object {rope_type: llama3 or default, ...} or null");
  ConfigFields s(*scaling, path, prefix);
  rope.theta = s.positive("rope_theta", rope.theta);
  const char* type_key = s.get("type") && !s.get("rope_type") ? "type" : "rope_type";  // older
  const json* type = s.get(type_key);
  if (type && *type == "default") return rope;
  const std::optional<RopeType> built = type && type->is_string() ? rope_type_named(type->get<std::string>()) : std::nullopt;
  if (!built) s.fail(type_key, std::string(kRopeTypesBuilt) + " (the scalings built; longrope is not), or default");
  rope.type = *built;
  // transformers 5's scaled frequencies cover partial_rotary_factor of the head, which Llama's
  // rotation does not split (its forward fails): refused rather than trained as another model.
  for (const ConfigFields* where : std::initializer_list<const ConfigFields*>{&s, &f})
    if (const json* partial = where->get("partial_rotary_factor"); partial && !(partial->is_number() && partial->get<double>() == 1))
      where->fail("partial_rotary_factor", std::string("1 with rope_type ") + rope_type_name(rope.type) +
                                               " (Llama rotates the whole head)");
  rope.original_max_position_embeddings = static_cast<int>(max_position_embeddings);
  for (const RopeScalingField& field : rope_scaling_fields(rope.type)) {
    if (field.required && !s.get(field.key)) s.fail(field.key, rope_required_message(rope.type));
    if (field.at_least_one) {
      const json* factor = s.get(field.key);
      if (!factor || !factor->is_number() || factor->get<double>() < 1) s.fail(field.key, "a number >= 1");
      rope.*field.number = factor->get<float>();
    } else if (field.number) {
      rope.*field.number = s.positive(field.key, rope.*field.number);
    } else if (field.length) {
      rope.*field.length = static_cast<int>(s.integer(field.key, kMaxPositions, rope.*field.length));
    } else {
      rope.*field.flag = s.flag(field.key, rope.*field.flag);
    }
  }
  if (const std::optional<RopeScalingProblem> problem = rope_scaling_problem(rope))
    throw UserError(path + ": " + key + ": expected " + problem->expected + ", got " + problem->got);
  return rope;
}

// The float's shortest decimal as a double, so config.json says 1e-05 rather than the nearest
// double to the f32, 9.999999747378752e-06.
double decimal(float v) {
  char buf[32];
  for (int precision = 1; precision <= 9; precision++) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, static_cast<double>(v));
    if (std::strtof(buf, nullptr) == v) break;
  }
  return std::strtod(buf, nullptr);
}

}  // namespace

bool is_hf_model_dir(const std::string& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::is_regular_file(fs::path(dir) / kHfConfigFile, ec);
}

LlamaConfig read_hf_config(const std::string& path) {
  const json j = read_json_file(path, "a Hugging Face config.json");
  if (!j.is_object()) throw UserError(path + ": expected a JSON object, got " + j.type_name());
  const ConfigFields f(j, path);
  // transformers' AutoConfig picks the model class by model_type (architectures is not read).
  if (!f.get("model_type")) f.fail("model_type", "\"llama\" (transformers' AutoConfig needs it)");
  f.require_text("model_type", "llama", "llm_train trains Llama models");
  if (const json* act = f.get("hidden_act"); act && !(*act == "silu" || *act == "swish"))  // transformers' ACT2FN: one SiLU
    f.fail("hidden_act", "silu (the SwiGLU MLP of Llama; swish is its other name)");
  // transformers drops attention probabilities at this rate in training; not built here.
  if (const json* dropout = f.get("attention_dropout"); dropout && !(dropout->is_number() && dropout->get<double>() == 0))
    f.fail("attention_dropout", "0 (attention dropout is not built)");
  if (f.flag("attention_bias", false)) f.fail("attention_bias", "false (the model has no biases)");
  if (f.flag("mlp_bias", false)) f.fail("mlp_bias", "false (the model has no biases)");

  LlamaConfig c;
  c.hidden_size = f.integer("hidden_size", kMaxWidth);
  c.intermediate_size = f.integer("intermediate_size", kMaxWidth);
  c.num_hidden_layers = f.integer("num_hidden_layers", kMaxLayers);
  c.num_attention_heads = f.integer("num_attention_heads", kMaxHeads);
  c.num_key_value_heads = f.integer("num_key_value_heads", kMaxHeads, c.num_attention_heads);
  c.vocab_size = f.integer("vocab_size", kMaxVocabSize);
  c.max_position_embeddings = f.integer("max_position_embeddings", kMaxPositions, 2048);
  c.rms_norm_eps = f.positive("rms_norm_eps", 1e-6f);
  c.rope = read_rope(f, path, c.max_position_embeddings);
  c.tie_word_embeddings = f.flag("tie_word_embeddings", false);
  c.initializer_range = f.positive("initializer_range", 0.02f);
  if (const json* pad = f.get("pad_token_id")) {
    if (!pad->is_number_integer() || pad->get<int64_t>() < 0 || pad->get<int64_t>() >= c.vocab_size)
      f.fail("pad_token_id", "an id below vocab_size, " + std::to_string(c.vocab_size) + ", or null");
    c.pad_token_id = pad->get<int64_t>();
  }
  if (const json* eos = f.get("eos_token_id"); eos && eos->is_array()) {
    for (const json& id : *eos) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= c.vocab_size)
        f.fail("eos_token_id", "ids below vocab_size, " + std::to_string(c.vocab_size) + " (or one id)");
      c.eos_token_ids.push_back(id.get<int64_t>());
    }
  }
  if (f.get("head_dim") && f.integer("head_dim", kMaxWidth) * c.num_attention_heads != c.hidden_size)
    f.fail("head_dim", "hidden_size / num_attention_heads = " + std::to_string(c.hidden_size) +
                           " / " + std::to_string(c.num_attention_heads) +
                           " (the only head size implemented)");
  if (std::string why = c.validate(); !why.empty()) throw UserError(path + ": " + why);
  return c;
}

namespace {

// The base's list of end ids when it holds the tokenizer's EOS (a model fine-tuned on another EOS
// stops at that one alone), else the tokenizer's EOS.
json end_ids(const LlamaConfig& c, HfTokenIds ids) {
  const bool listed = std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), ids.eos) != c.eos_token_ids.end();
  return listed ? json(c.eos_token_ids) : json(ids.eos);
}

}  // namespace

std::string hf_generation_config_json(const LlamaConfig& c, HfTokenIds ids) {
  nlohmann::ordered_json j = {{"_from_model_config", true}, {"bos_token_id", ids.bos}, {"eos_token_id", end_ids(c, ids)}};
  if (c.pad_token_id >= 0) j["pad_token_id"] = c.pad_token_id;
  return j.dump(2) + "\n";
}

std::string hf_config_json(const LlamaConfig& c, DType dtype, HfTokenIds ids) {
  const RopeConfig& r = c.rope;
  json rope_scaling = nullptr;
  if (r.factor > 0.0f) {
    rope_scaling = {{"rope_type", rope_type_name(r.type)}};
    for_each_rope_value(r, [&](const char* key, auto value) {
      if constexpr (std::is_same_v<decltype(value), float>) rope_scaling[key] = decimal(value);
      else rope_scaling[key] = value;
    });
  }
  nlohmann::ordered_json j = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"torch_dtype", dtype == DType::bf16 ? "bfloat16" : "float32"},
      {"bos_token_id", ids.bos},
      {"eos_token_id", ids.eos},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_hidden_layers", c.num_hidden_layers},
      {"num_attention_heads", c.num_attention_heads},
      {"num_key_value_heads", c.num_key_value_heads},
      {"head_dim", c.head_dim()},
      {"vocab_size", c.vocab_size},
      {"max_position_embeddings", c.max_position_embeddings},
      {"rms_norm_eps", decimal(c.rms_norm_eps)},
      {"rope_theta", decimal(r.theta)},
      {"rope_scaling", rope_scaling},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"initializer_range", decimal(c.initializer_range)},
      {"pad_token_id", c.pad_token_id >= 0 ? json(c.pad_token_id) : json(nullptr)},
      {"hidden_act", "silu"},
      {"attention_bias", false},
      {"mlp_bias", false},
      {"attention_dropout", 0.0},
      {"use_cache", true},
  };
  if (c.num_labels > 0) {  // LlamaForSequence/TokenClassification: transformers' default label names
    j["architectures"] = {c.token_classification ? "LlamaForTokenClassification" : "LlamaForSequenceClassification"};
    nlohmann::ordered_json id2label = nlohmann::ordered_json::object(), label2id = nlohmann::ordered_json::object();
    for (int64_t i = 0; i < c.num_labels; i++) {
      id2label[std::to_string(i)] = "LABEL_" + std::to_string(i);
      label2id["LABEL_" + std::to_string(i)] = i;
    }
    j["id2label"] = id2label, j["label2id"] = label2id;
    if (ids.pad >= 0) j["pad_token_id"] = ids.pad;
  }
  return j.dump(2) + "\n";
}

}  // namespace llm
