// Examples held to Axolotl 0.19's own: the input_ids and labels its prompt strategies, length
// filters and trainable-token filter make of alpaca, completion (.jsonl and .txt), user-defined,
// input_output and chat_template datasets (test/data/axolotl_rows/cases.json, written by
// tools/make_axolotl_rows.py with Axolotl's functions and HF datasets' loaders), read here through
// a config as llm_train reads it: empty text, null fields, a row missing a column others have,
// .txt lines, completion's 64 x sequence_len cut and chunks, truncation and min_sample_len, chat
// templates' turn masks under train_on_eos, train_on_eot, roles_to_train, eot_tokens (and the
// refusal of a conflict), an EOS that is or is not the template's end of turn, the field mappings.
// Alpaca and user-defined rows around sequence_len as its test split (test_datasets) keeps them to
// eval_sequence_len, each cut as its two tokenizer calls cut prompt and response, and as its train
// split drops or truncates them.
// And the texts its DPO and KTO transforms write: prompt, chosen and rejected (rl: dpo), prompt,
// completion and label (rl: kto).
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <nlohmann/json.hpp>

#include "engine/ops.h"  // kIgnoreIndex
#include "io/dataset.h"
#include "io/kto.h"
#include "io/orpo.h"
#include "io/preference.h"
#include "io/preference_rows.h"
#include "io/token_cache.h"
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
// (JSON is YAML's flow style), with the tokenizer that config loads; a case of split "test" names
// it under test_datasets too, as Axolotl's test split.
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
    std::string entry;
    for (const auto& [key, value] : c["entry"].items()) entry += "    " + key + ": " + value.dump() + "\n";
    yaml += entry;
    if (c.value("split", "train") == "test") yaml += "test_datasets:\n  - path: " + path + "\n" + entry;
    for (const auto& [key, value] : c["config"].items()) yaml += key + ": " + value.dump() + "\n";
    config = parse_config(yaml, "cases.yaml");
    tokenizer = with_special_tokens(make_tokenizer(config.tokenizer_config), config.special_tokens, config.source);
  }
};

const json& fixture() {
  static const json cases = json::parse(read_file((kCases / "cases.json").string()));
  return cases;
}

}  // namespace

TEST_CASE("alpaca, completion, user-defined, input_output and chat rows are Axolotl's, token for token") {
  REQUIRE(fixture()["cases"].size() == 87);
  int test_split = 0;
  for (const json& c : fixture()["cases"]) {
    if (c["config"].contains("rl")) continue;  // the next test's
    CAPTURE(c["name"].get<std::string>());
    const LoadedCase loaded(c);
    auto load = [&] {
      return load_training_data(loaded.config.data, loaded.config.seed, *loaded.tokenizer, [](const std::string&) {});
    };
    if (c.contains("error")) {  // a config Axolotl refuses (its message in the case): refused here too
      CAPTURE(c["error"].get<std::string>());
      CHECK(error_of([&] { load(); }).find(loaded.path + ": train_on_eot") == 0);
      continue;
    }
    // The test split: test_datasets' examples as the trainer loads them, kept to eval_sequence_len
    // (load_test_examples sets keeps_eval_length on their config).
    std::optional<CachedExamples> test;
    std::optional<TrainingData> data;
    if (c.value("split", "train") == "test") {
      test_split++;
      REQUIRE(loaded.config.data.eval_sequence_len == c["config"]["eval_sequence_len"].get<int64_t>());
      test = load_test_examples(loaded.config.data, loaded.config.seed, *loaded.tokenizer, [](const std::string&) {});
    } else {
      data = load();
    }
    const ExampleSet& got = test ? test->data : *data->examples;
    std::vector<int64_t> kept;  // the rows Axolotl's filters keep, in file order (not the dropped ones' placeholders)
    for (int64_t e = 0; e < got.size(); e++)
      if (got.length(e) > 0) kept.push_back(e);
    REQUIRE(kept.size() == c["examples"].size());
    for (size_t k = 0; k < kept.size(); k++) {
      CAPTURE(k);
      const auto begin = got.offsets[kept[k]], end = got.offsets[kept[k] + 1];
      CHECK(std::vector<int32_t>(got.tokens.begin() + begin, got.tokens.begin() + end) ==
            c["examples"][k]["input_ids"].get<std::vector<int32_t>>());
      CHECK(std::vector<int32_t>(got.labels.begin() + begin, got.labels.begin() + end) ==
            c["examples"][k]["labels"].get<std::vector<int32_t>>());
    }
  }
  CHECK(test_split == 9);
}

TEST_CASE("rl: dpo pairs and rl: kto rows: Axolotl's texts and length rule, TRL 1.9's token ids") {
  int dpo = 0, kto = 0, row_rule_cases = 0, refused = 0;
  for (const json& c : fixture()["cases"]) {
    if (!c.contains("pairs") && !(c.contains("error") && c["config"].contains("rl"))) continue;
    CAPTURE(c["name"].get<std::string>());
    const LoadedCase loaded(c);
    const std::string excess = loaded.config.data.excess_length_strategy;
    if (c.contains("error")) {  // excess_length_strategy raise: Axolotl refuses the dataset, as here
      refused++;
      CAPTURE(c["error"].get<std::string>());
      std::vector<Example> out;
      ExampleStats stats;
      CHECK(error_of([&] {
              append_preference_examples(loaded.config.data.datasets.at(0), *loaded.tokenizer, loaded.config.data, out, stats);
            }).find("more than sequence_len 48 (excess_length_strategy: raise") != std::string::npos);
      continue;
    }
    const json& expected = c["pairs"];
    if (c["config"]["rl"] == "kto") {
      kto++;
      std::vector<KtoText> rows;
      load_kto_file(loaded.path, loaded.config.data.datasets.at(0), rows);
      REQUIRE(rows.size() == expected.size());
      for (size_t i = 0; i < rows.size(); i++) {
        CAPTURE(i);
        CHECK(rows[i].prompt.str() == expected[i]["prompt"].get<std::string>());
        CHECK(rows[i].completion.str() == expected[i]["completion"].get<std::string>());
        const json& label = expected[i]["label"];  // as written: true / false or 1 / 0
        CHECK(rows[i].desirable == (label.is_boolean() ? label.get<bool>() : label.get<int>() == 1));
      }
      // The rows kept, each as TRL's prompt_ids and completion_ids (cut to max_length only in batches).
      std::vector<Example> kept;
      ExampleStats stats;
      append_kto_examples(loaded.config.data.datasets.at(0), *loaded.tokenizer, loaded.config.data.sequence_len, kept, stats,
                          excess);
      size_t k = 0;
      for (size_t i = 0; i < expected.size(); i++) {
        if (!expected[i].contains("trl")) continue;
        CAPTURE(i);
        REQUIRE(k + 1 < kept.size());
        CHECK(kept[k].tokens == expected[i]["trl"]["prompt_ids"].get<std::vector<int32_t>>());
        CHECK(kept[k + 1].tokens == expected[i]["trl"]["completion_ids"].get<std::vector<int32_t>>());
        CHECK(kept[k + 1].labels == kept[k + 1].tokens);
        k += 2;
      }
      CHECK(k == kept.size());
      continue;
    }
    // ORPO's and SimPO's pairs: TRL's tokenize_row (its ORPOTrainer and CPOTrainer share it)
    const bool row_rule = loaded.config.data.pair_tokenizing == DataConfig::PairTokenizing::tokenize_row;
    (row_rule ? row_rule_cases : dpo)++;
    std::vector<PreferenceText> pairs;
    load_preference_file(loaded.path, loaded.config.data.datasets.at(0), *loaded.tokenizer, pairs);
    REQUIRE(pairs.size() == expected.size());
    for (size_t i = 0; i < pairs.size(); i++) {
      CAPTURE(i);
      CHECK(pairs[i].prompt.str() == expected[i]["prompt"].get<std::string>());
      CHECK(pairs[i].chosen.str() == expected[i]["chosen"].get<std::string>());
      CHECK(pairs[i].rejected.str() == expected[i]["rejected"].get<std::string>());
      // TRL's sequences (of the texts as excess_length_strategy leaves them): prompt_ids, then each
      // response's ids, cut to max_length; the prompt masked.
      preference_rows::fit_excess_length(excess, pairs[i].prompt, {&pairs[i].chosen, &pairs[i].rejected}, *loaded.tokenizer,
                                         loaded.config.data.sequence_len, "pair");
      const int64_t L = loaded.config.data.sequence_len;
      const std::optional<PreferenceExamples> ex = row_rule ? tokenize_row(pairs[i], *loaded.tokenizer, L)
                                                        : tokenize_preference(pairs[i], *loaded.tokenizer, L);
      bool kept = expected[i].contains("trl");
      if (kept && row_rule)  // a response TRL 1.9 leaves wholly past max_length: its row would hold none of it
        for (const char* labels : {"chosen_labels", "rejected_labels"}) {
          const std::vector<int32_t> l = expected[i]["trl"][labels];
          kept &= std::any_of(l.begin(), l.begin() + std::min<int64_t>(L, int64_t(l.size())),
                              [](int32_t id) { return id != kIgnoreIndex; });
        }
      REQUIRE(ex.has_value() == kept);
      if (!ex) continue;
      const json& trl = expected[i]["trl"];
      if (row_rule) {  // TRL's tokenize_row: whole sequences and their labels, ended at max_length
        auto head = [&](const json& ids) {  // (TRL 1.9 leaves up to BOS and EOS past it; io/orpo.h)
          std::vector<int32_t> v = ids;
          v.resize(std::min<size_t>(v.size(), size_t(L)));
          return v;
        };
        CHECK(ex->chosen.tokens == head(trl["chosen_input_ids"]));
        CHECK(ex->chosen.labels == head(trl["chosen_labels"]));
        CHECK(ex->rejected.tokens == head(trl["rejected_input_ids"]));
        CHECK(ex->rejected.labels == head(trl["rejected_labels"]));
        continue;
      }
      const std::vector<int32_t> prompt = trl["prompt_ids"];
      for (const auto& [got, key] : {std::pair{&ex->chosen, "chosen_ids"}, std::pair{&ex->rejected, "rejected_ids"}}) {
        CAPTURE(key);
        std::vector<int32_t> want = prompt;
        for (int32_t id : trl[key]) want.push_back(id);
        want.resize(std::min<size_t>(want.size(), size_t(loaded.config.data.sequence_len)));
        CHECK(got->tokens == want);
        std::vector<int32_t> labels = want;
        std::fill_n(labels.begin(), std::min(prompt.size(), labels.size()), kIgnoreIndex);
        CHECK(got->labels == labels);
      }
    }
  }
  CHECK(dpo == 20);
  CHECK(kto == 14);
  CHECK(row_rule_cases == 5);  // ORPO's and SimPO's (TRL's CPOTrainer) tokenize_row
  CHECK(refused == 1);
}
