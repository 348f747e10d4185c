// Examples held to Axolotl 0.19's own: the input_ids and labels its prompt strategies, length
// filters and trainable-token filter make of alpaca, completion (.jsonl and .txt), user-defined,
// input_output and chat_template datasets (test/data/axolotl_rows/cases.json, written by
// tools/make_axolotl_rows.py with Axolotl's functions and HF datasets' loaders), read here through
// a config as llm_train reads it: empty text, null fields, a row missing a column others have,
// .txt lines, completion's 64 x sequence_len cut and chunks, truncation and min_sample_len, chat
// templates' turn masks under train_on_eos, roles_to_train, eot_tokens and the field mappings.
// And the prompt, chosen and rejected texts its DPO transforms write (rl: dpo).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/dataset.h"
#include "io/preference.h"
#include "test/test_files.h"
#include "train/config.h"

using namespace llm;
using namespace llm::testing;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace doctest {
template <>
struct StringMaker<std::vector<int32_t>> {  // a failing check prints the ids
  static String convert(const std::vector<int32_t>& ids) { return nlohmann::json(ids).dump().c_str(); }
};
}  // namespace doctest

namespace {

const fs::path kCases = fs::path(__FILE__).parent_path() / "data" / "axolotl_rows";

// A case's data file written to a scratch directory and read as a config file would name it
// (JSON is YAML's flow style), with the tokenizer that config loads.
struct LoadedCase {
  TempDir work;
  std::string path;
  TrainConfig config;
  std::unique_ptr<Tokenizer> tokenizer;

  explicit LoadedCase(const json& c) : path((work.path / c["file"].get<std::string>()).string()) {
    write_file(path, c["content"].get<std::string>());
    std::string yaml = "tokenizer_config: " + kCases.string() + "\n" +
                       "dataset_prepared_path: " + (work.path / "prepared").string() + "\n" +
                       "shuffle_merged_datasets: false\n"  // Axolotl's order: the file's
                       "datasets:\n  - path: " + path + "\n";
    for (const auto& [key, value] : c["entry"].items()) yaml += "    " + key + ": " + value.dump() + "\n";
    for (const auto& [key, value] : c["config"].items()) yaml += key + ": " + value.dump() + "\n";
    config = parse_config(yaml, "cases.yaml");
    tokenizer = make_tokenizer(config.tokenizer_config);
  }
};

const json& fixture() {
  static const json cases = json::parse(read_file((kCases / "cases.json").string()));
  return cases;
}

}  // namespace

TEST_CASE("alpaca, completion, user-defined, input_output and chat rows are Axolotl's, token for token") {
  REQUIRE(fixture()["cases"].size() == 29);
  for (const json& c : fixture()["cases"]) {
    if (!c.contains("examples")) continue;  // a preference case
    CAPTURE(c["name"].get<std::string>());
    const LoadedCase loaded(c);
    const TrainingData data =
        load_training_data(loaded.config.data, loaded.config.seed, *loaded.tokenizer, [](const std::string&) {});
    const ExampleSet& got = *data.examples;
    REQUIRE(got.size() == static_cast<int64_t>(c["examples"].size()));
    for (int64_t e = 0; e < got.size(); e++) {
      CAPTURE(e);
      const auto begin = got.offsets[e], end = got.offsets[e + 1];
      CHECK(std::vector<int32_t>(got.tokens.begin() + begin, got.tokens.begin() + end) ==
            c["examples"][e]["input_ids"].get<std::vector<int32_t>>());
      CHECK(std::vector<int32_t>(got.labels.begin() + begin, got.labels.begin() + end) ==
            c["examples"][e]["labels"].get<std::vector<int32_t>>());
    }
  }
}

TEST_CASE("rl: dpo pairs: the prompt, chosen and rejected texts of Axolotl's DPO transforms") {
  int cases = 0;
  for (const json& c : fixture()["cases"]) {
    if (!c.contains("pairs")) continue;
    cases++;
    CAPTURE(c["name"].get<std::string>());
    const LoadedCase loaded(c);
    std::vector<PreferenceText> pairs;
    load_preference_file(loaded.path, loaded.config.data.datasets.at(0), *loaded.tokenizer, pairs);
    REQUIRE(pairs.size() == c["pairs"].size());
    for (size_t i = 0; i < pairs.size(); i++) {
      CAPTURE(i);
      CHECK(pairs[i].prompt.str() == c["pairs"][i]["prompt"].get<std::string>());
      CHECK(pairs[i].chosen.str() == c["pairs"][i]["chosen"].get<std::string>());
      CHECK(pairs[i].rejected.str() == c["pairs"][i]["rejected"].get<std::string>());
    }
  }
  CHECK(cases == 7);
}
