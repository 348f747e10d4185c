// defines: load_hf_weights, read_hf_weights, save_hf_model, save_hf_tensors
#include "model/hf_checkpoint.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <random>
#include <set>

#include "io/durable_file.h"
#include "engine/user_error.h"
#include "model/hf_config.h"

namespace llm {

namespace fs = std::filesystem;

namespace {

// model.rotary_emb.inv_freq or model.layers.N.self_attn.rotary_emb.inv_freq, matched by hand:
// std::regex recurses per digit, and a file's name of 100 000 digits overflowed the stack.
bool is_rope_buffer(const std::string& name) {
  const std::string prefix = "model.layers.", suffix = ".self_attn.rotary_emb.inv_freq";
  if (name == "model.rotary_emb.inv_freq") return true;
  if (name.size() <= prefix.size() + suffix.size() || name.rfind(prefix, 0) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return false;
  const std::string layer = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  return std::all_of(layer.begin(), layer.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool vocabulary_rows(const std::string& name) { return name == "model.embed_tokens.weight" || name == "lm_head.weight"; }

// `saved` (rows, C) grown to `shape` (V, C): its rows first, then new ones (VocabularyGrowth).
Tensor grown_rows(const Tensor& saved, const Shape& shape, float stddev, const VocabularyGrowth& growth,
                  const std::string& name) {
  std::vector<float> v = saved.to_floats();
  const int64_t rows = saved.size(0), C = saved.size(1);
  std::vector<double> mean(static_cast<size_t>(C), 0.0);  // of the old rows, with mean resizing only
  for (int64_t r = 0; growth.mean && r < rows; r++)
    for (int64_t c = 0; c < C; c++) mean[c] += v[r * C + c] / static_cast<double>(rows);
  std::mt19937_64 rng(growth.seed ^ std::hash<std::string>{}(name));
  std::normal_distribution<float> dist(0.0f, stddev);
  v.resize(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = static_cast<size_t>(saved.numel()); i < v.size(); i++)
    v[i] = growth.mean ? static_cast<float>(mean[i % C]) : dist(rng);
  return Tensor::from_floats(v, shape);
}

}  // namespace

int64_t load_hf_weights(LlamaModel& model, const std::string& dir, std::optional<VocabularyGrowth> growth,
                        uint64_t score_seed) {
  return read_hf_weights(
      model, dir, [](const ParamRef& p, const Tensor& value) { p.tensor->copy_from(value); }, growth, score_seed);
}

void require_finite_weight(const Tensor& value, const std::string& file, const std::string& name) {
  const float* v = value.data<float>();
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < value.numel(); i++)
    if (!std::isfinite(v[i])) bad++, first = first < 0 ? i : first;
  if (bad > 0)
    throw UserError(file + ": tensor " + name + " holds " + std::to_string(bad) + " non-finite value(s) (NaN or " +
                    "infinity), the first at flat index " + std::to_string(first) + "; expected finite weights");
}

int64_t read_hf_weights(LlamaModel& model, const std::string& dir, const WeightSink& sink,
                        std::optional<VocabularyGrowth> growth, uint64_t score_seed) {
  const SafetensorsDir files(dir);
  const std::vector<BaseWeight> weights = model.base_weights();
  std::set<std::string> wanted;
  for (const BaseWeight& w : weights) wanted.insert(w.ref.name);
  // Tied, the embedding serves as lm_head; a sequence classifier has none (transformers ignores a
  // causal LM's, whose score head it then draws: TRL's RewardTrainer on a causal LM base).
  if (model.config().tie_word_embeddings || model.config().num_labels > 0) wanted.insert("lm_head.weight");
  const bool draws_score = model.config().num_labels > 0 && !files.find(LlamaModel::kScoreHeadName);
  // A token classifier's bias missing (a causal LM's files): transformers starts it at zeros.
  const bool zero_bias = model.config().has_score_bias() && !files.find(LlamaModel::kScoreBiasName);
  // All names are checked before any weight is copied, so a mismatch costs no reading. Older
  // exports hold the RoPE frequencies (rotary_emb.inv_freq, each layer's or the model's), a buffer
  // computed from the config, which transformers ignores on load; so does this.
  for (const std::string& name : files.names())
    if (!wanted.count(name) && !is_rope_buffer(name))
      throw UserError(files.file_of(name) + ": tensor " + name + " is not a parameter of the configured model" +
                      (name == LlamaModel::kScoreHeadName
                           ? " (a classifier's score head: a reward model's, trained with reward_model: true or "
                             "process_reward_model: true)"
                           : ""));
  // A model untied over a tied base (LlamaModel::untie_embeddings, for PEFT's modules_to_save),
  // read again (an 8-bit base's merge streams it): its lm_head started as the base's one table.
  const fs::path base_config = fs::path(dir) / kHfConfigFile;
  const bool head_from_embedding = !model.config().tie_word_embeddings && !files.find("lm_head.weight") &&
                                   fs::exists(base_config) && read_hf_config(base_config.string()).tie_word_embeddings;
  auto source = [head_from_embedding](const std::string& name) {
    return head_from_embedding && name == "lm_head.weight" ? std::string("model.embed_tokens.weight") : name;
  };
  for (const BaseWeight& w : weights) {
    const std::string name = source(w.ref.name);
    if ((draws_score && name == LlamaModel::kScoreHeadName) || (zero_bias && name == LlamaModel::kScoreBiasName))
      continue;
    const SafetensorsEntry* e = files.find(name);
    if (!e) throw UserError(dir + ": tensor " + w.ref.name + " is missing from the safetensors files");
    const bool resized = growth && vocabulary_rows(name) && e->shape.size() == 2 && e->shape[1] == w.shape[1] &&
                         (e->shape[0] < w.shape[0] || (growth->shrink && e->shape[0] > w.shape[0]));
    if (e->shape != w.shape && !resized)
      throw UserError(files.file_of(name) + ": tensor " + name + " is " + shape_str(e->shape) +
                      " but the configured model needs " + shape_str(w.shape));
  }
  for (const BaseWeight& w : weights) {
    const std::string name = source(w.ref.name);
    if (draws_score && name == LlamaModel::kScoreHeadName) {
      sink(w.ref, model.draw_score_head(score_seed));
      continue;
    }
    if (zero_bias && name == LlamaModel::kScoreBiasName) {
      sink(w.ref, Tensor::zeros(w.shape, DType::f32));
      continue;
    }
    Tensor value = files.read(name, DType::f32);
    require_finite_weight(value, files.file_of(name), name);
    if (value.shape() != w.shape)  // a grown or shrunk vocabulary (checked above), drawn as the table's
      value = value.size(0) > w.shape[0] ? value.narrow(0, 0, w.shape[0]).contiguous()
                                          : grown_rows(value, w.shape, model.config().initializer_range, *growth, name);
    sink(w.ref, value);
  }
  return static_cast<int64_t>(weights.size());
}

void save_hf_model(LlamaModel& model, const std::string& dir, DType dtype, HfTokenIds ids,
                   uint64_t max_shard_bytes) {
  std::vector<NamedTensor> tensors;
  for (const ParamRef& p : model.parameters()) tensors.push_back({p.name, *p.tensor});
  save_hf_tensors(model.config(), tensors, dir, dtype, ids, max_shard_bytes);
}

void save_hf_tensors(const LlamaConfig& config, const std::vector<NamedTensor>& tensors,
                     const std::string& dir, DType dtype, HfTokenIds ids, uint64_t max_shard_bytes) {
  write_safetensors_dir(dir, tensors, dtype, max_shard_bytes);
  write_text_atomically((fs::path(dir) / kHfConfigFile).string(), hf_config_json(config, dtype, ids));
}

void save_hf_tensors(const LlamaConfig& config, const std::vector<TensorEntry>& table,
                     const std::function<void(const TensorSink& put)>& produce, const std::string& dir,
                     DType dtype, HfTokenIds ids) {
  write_safetensors_dir(dir, table, produce, dtype);
  write_text_atomically((fs::path(dir) / kHfConfigFile).string(), hf_config_json(config, dtype, ids));
}

}  // namespace llm
