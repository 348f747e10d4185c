// Look-alikes of Axolotl's example configs (examples/llama-3/ in axolotl-ai-cloud/axolotl): the
// small model that replaces their base_model, the local alpaca sample that replaces their hub
// datasets, and the helpers that place, parse, edit and train them. Shared by test_axolotl_examples,
// test_axolotl_examples_sweep and test_axolotl_examples_rl.
#pragma once
#include <algorithm>

#include "engine/user_error.h"
#include "test/train_fixture.h"
#include "train/config.h"

namespace llm::testing {

inline const std::string kAlpaca = (fs::path(__FILE__).parent_path() / ".." / "configs" / "data" / "alpaca_sample.jsonl").string();

// The shape that replaces each example's base_model (a hub id, which is not downloaded here).
inline const std::string kModel =
    "base_model: tiny\nhidden_size: 32\nintermediate_size: 64\nnum_hidden_layers: 2\n"
    "num_attention_heads: 4\nnum_key_value_heads: 2\nmax_position_embeddings: 8192\n";

// The example with its datasets (each ALPACA) at `data` and its output under `dir`.
inline std::string localised(std::string yaml, const std::string& data, const fs::path& dir) {
  for (size_t at = yaml.find("ALPACA"); at != std::string::npos; at = yaml.find("ALPACA", at + data.size()))
    yaml.replace(at, 6, data);
  const size_t out = yaml.find("output_dir: ");
  yaml.replace(out, yaml.find('\n', out) - out, "output_dir: " + (dir / "out").string());
  const size_t prepared = yaml.find("dataset_prepared_path:");
  yaml.replace(prepared, yaml.find('\n', prepared) - prepared, "dataset_prepared_path: " + (dir / "prepared").string());
  return yaml;
}

inline TrainConfig parse_example(const std::string& yaml) { return parse_config(localised(yaml, kAlpaca, "/tmp/x"), "example.yml"); }

inline std::string error_of(const std::string& yaml) {
  try {
    parse_example(yaml);
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

inline bool has(const std::vector<std::string>& keys, const std::string& key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

inline std::string replaced(std::string yaml, const std::string& from, const std::string& to) {
  return yaml.replace(yaml.find(from), from.size(), to);
}

// A refusal: exactly one line, naming `key` and saying it is not supported.
inline void check_refused(const std::string& yaml, const std::string& key) {
  const std::string e = error_of(yaml);
  CHECK_MESSAGE(e.find(": " + key + ": not supported, ") != std::string::npos, e);
  CHECK_MESSAGE(e.find('\n') == std::string::npos, e);
}

// The output of 2 steps of `yaml` on the alpaca sample, or on the JSON lines `rows` when given.
inline std::string train_2_steps(const std::string& yaml, const std::string& name, const std::string& rows = "") {
  Workspace ws(name);
  std::string data = kAlpaca;
  if (!rows.empty()) write_file(data = (ws.dir / "rows.jsonl").string(), rows);
  const std::string config = (ws.dir / "example.yml").string();
  write_file(config, localised(yaml, data, ws.dir));
  // The byte tokenizer stands in for the 128k Llama 3 one, which has no <|end_of_text|> here.
  Run r = run_train(config + " --max_steps 2 --sequence_len 256 --special_tokens '{}'");
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("step 2/2") != std::string::npos);
  return r.output;
}

}  // namespace llm::testing
