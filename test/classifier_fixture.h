// The reward-model tests' workspace: a causal LM base (tied, as Llama 3.2 1B) in HF's files, the
// small tiktoken tokenizer beside it, a dataset file, and configs that train a classifier on it
// (test_reward_model, test_process_reward_model).
#pragma once
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/tokenizer.h"
#include "model/hf_checkpoint.h"
#include "test/tokenizer_fixture.h"
#include "test/train_fixture.h"

namespace llm::testing {

struct ClassifierWorkspace {
  TempDir dir;
  std::string base = (dir.path / "base").string();
  std::string trainer;  // the trainer's keys and its dataset
  // `rows` written as rows.jsonl, read as `type` under `trainer_keys` (reward_model: true, ...).
  ClassifierWorkspace(const std::string& name, const std::string& rows, const std::string& trainer_keys,
                      const std::string& type)
      : dir(name) {
    write_file((dir.path / "tokenizer.model").string(), small_ranks_text());
    write_file(path("rows.jsonl"), rows);
    trainer = trainer_keys + "datasets:\n  - path: " + path("rows.jsonl") + "\n    type: " + type + "\n";
    LlamaConfig c;
    c.hidden_size = 32, c.intermediate_size = 64, c.num_hidden_layers = 2, c.num_attention_heads = 4;
    c.num_key_value_heads = 2, c.vocab_size = kRanks + 256, c.tie_word_embeddings = true;
    LlamaModel model(c, Device::cpu(), 3);
    save_hf_model(model, base, DType::f32, {kRanks, kRanks + 1});
  }
  std::string path(const std::string& sub) const { return (dir.path / sub).string(); }
  // The config file (c.yaml): the base, the tokenizer, the trainer, kRunKeys, then `extra`.
  std::string config(const std::string& extra = "") const {
    return write_config("base_model: " + base + "\ntokenizer_config: " + dir.path.string() + "\n" + trainer + kRunKeys +
                        extra);
  }
  std::string write_config(const std::string& yaml) const {
    write_file(path("c.yaml"), yaml);
    return path("c.yaml");
  }
  inline static const std::string kRunKeys =
      "sequence_len: 64\nmicro_batch_size: 8\ngradient_accumulation_steps: 1\nlearning_rate: 0.003\n"
      "lr_scheduler: constant\nlogging_steps: 1\nmax_steps: 4\nsave_steps: 2\nval_set_size: 0\nseed: 7\n"
      "overwrite_output_dir: true\n";
  std::string keys_at(const std::string& out) const {
    return "dataset_prepared_path: " + path("prepared") + "\noutput_dir: " + out + "\n";
  }
  // The classifier a run starts from: the base read into `labels` labels (per token or not), its
  // score head drawn from the runs' seed (7).
  std::unique_ptr<LlamaModel> starting_classifier(int64_t labels, bool per_token) const {
    LlamaConfig c = read_hf_config(base + "/config.json");
    c.num_labels = labels, c.token_classification = per_token, c.tie_word_embeddings = false;
    auto model = std::make_unique<LlamaModel>(c, Device::cpu(), 1);
    load_hf_weights(*model, base, {}, 7);
    return model;
  }
  std::unique_ptr<Tokenizer> tokenizer() const { return make_tokenizer(path("tokenizer.model")); }
  // rows.jsonl as `append` (the dataset type's loader) reads it under kRunKeys' sequence_len.
  template <class Append>
  std::vector<Example> examples(DatasetSpec spec, Append append) const {
    spec.path = path("rows.jsonl");
    DataConfig data;
    data.sequence_len = 64;
    std::vector<Example> out;
    ExampleStats stats;
    append(spec, *tokenizer(), data, out, stats);
    return out;
  }
};

// Positions 0 .. n-1 of one sequence, (1, n).
inline Tensor positions_of(int64_t n) {
  std::vector<int32_t> positions(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) positions[i] = static_cast<int32_t>(i);
  return Tensor::from_ints(positions, {1, n});
}

inline std::string with_line_removed(std::string text, const std::string& line) {
  return text.erase(text.find(line), line.size());
}

// metrics.jsonl's training records.
inline std::vector<nlohmann::json> loss_records(const std::string& metrics_path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(metrics_path);
  for (std::string line; std::getline(in, line);)
    if (line.find("\"loss\"") != std::string::npos) out.push_back(nlohmann::json::parse(line));
  return out;
}

// tools/make_reward_reference.py's fixtures (TRL's RewardTrainer and PRMTrainer in torch, made
// with torch on the CPU), in LLM_REWARD_REFERENCE_DIR. llm_train runs case `name` from `start`
// (the starting classifier the script saved) with `trainer` (its keys and dataset) and the
// fixture's settings; every step's `keys` must be within 5e-5 of the case's (relative to the
// size, at least 1).
inline void check_reference_case(const std::string& name, const std::string& start, const std::string& trainer,
                                 const std::vector<const char*>& keys) {
  const std::string dir = LLM_REWARD_REFERENCE_DIR;
  REQUIRE_MESSAGE(std::filesystem::exists(dir + "/trajectory.json"),
                  dir << "/trajectory.json is missing: run tools/make_reward_reference.py");
  const nlohmann::json f = nlohmann::json::parse(read_file(dir + "/trajectory.json"));
  const nlohmann::json& s = f.at("settings");
  TempDir work("reward_reference_" + name);
  std::string yaml = "base_model: " + dir + "/" + start + "\n" + trainer + "dataset_prepared_path: " +
                     (work.path / "prepared").string() + "\noutput_dir: " + (work.path / "out").string() +
                     "\nval_set_size: 0\nsave_strategy: 'no'\nshuffle_merged_datasets: false\nlr_scheduler: constant\n"
                     "weight_decay: 0\nlogging_steps: 1\noverwrite_output_dir: true\n";
  for (const char* key : {"sequence_len", "micro_batch_size", "gradient_accumulation_steps", "max_steps", "learning_rate",
                          "max_grad_norm", "adam_beta1", "adam_beta2", "adam_epsilon"})
    yaml += std::string(key) + ": " + s.at(key).dump() + "\n";
  write_file((work.path / "c.yaml").string(), yaml);
  const Run run = run_train((work.path / "c.yaml").string());
  REQUIRE_MESSAGE(run.exit_code == 0, run.output);
  const std::vector<nlohmann::json> ours = loss_records((work.path / "out/metrics.jsonl").string());
  const nlohmann::json& expected = f.at("cases").at(name).at("steps");
  REQUIRE(ours.size() == expected.size());
  for (size_t i = 0; i < ours.size(); i++) {
    CAPTURE(ours[i].dump());
    CAPTURE(expected[i].dump());
    for (const char* key : keys) {
      CAPTURE(key);
      const double a = ours[i].at(key), b = expected[i].at(key);
      CHECK(std::fabs(a - b) <= 5e-5 * std::max(1.0, std::fabs(b)));
    }
  }
}

// The Jinja template of the reward fixture's config (make_reward_reference.py's TEMPLATE).
inline std::string reference_template() {
  const std::string path = std::string(LLM_REWARD_REFERENCE_DIR) + "/trajectory.json";
  if (!std::filesystem::exists(path)) return "";
  return nlohmann::json::parse(read_file(path)).at("settings").at("chat_template_jinja").dump();
}

}  // namespace llm::testing
