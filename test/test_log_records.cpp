// metrics.jsonl's training and evaluation records end to end on a small model: the logged loss as
// HF's Trainer averages it, and the fields AxolotlTrainer.log adds to supervised fine-tuning's
// (ppl, eval_ppl, tokens/trainable, tokens/train_per_sec_per_gpu), each exact across a resume, and
// the num_tokens TRL's DPO and KTO trainers log (the reward model's: test_reward_model).
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/dataset.h"
#include "io/tokenizer.h"
#include "test/train_fixture.h"
#include "train/config.h"

using namespace llm;
using namespace llm::testing;
using nlohmann::json;

namespace {

// The "loss" of each metrics.jsonl training record.
std::vector<double> logged_losses(const std::string& metrics_path) {
  std::vector<double> losses;
  for (const std::string& record : train_records(metrics_path))
    losses.push_back(std::stod(record.substr(record.find("\"loss\": ") + 8)));
  return losses;
}

// Every record of a metrics.jsonl without its timings, which no two runs share.
std::vector<json> untimed_records(const std::string& metrics_path) {
  std::vector<json> records;
  std::ifstream in(metrics_path);
  for (std::string line; std::getline(in, line);) {
    json record = json::parse(line);
    record.erase("tokens_per_s");
    record.erase("tokens/train_per_sec_per_gpu");
    records.push_back(record);
  }
  return records;
}

// A workspace whose config trains on 100 input_output rows of 8 bytes, the last 2 labelled.
std::string segment_rows_config(const Workspace& ws, const std::string& extra) {
  std::string rows;
  for (int i = 0; i < 100; i++)
    rows += "{\"segments\": [{\"label\": false, \"text\": \"abcdef\"}, {\"label\": true, \"text\": \"gh\"}]}\n";
  write_file((ws.dir / "rows.jsonl").string(), rows);
  const std::string path = ws.config(extra);
  std::string text = read_file(path);
  const std::string corpus = (ws.dir / "corpus.txt").string() + "\n    type: completion";
  text.replace(text.find(corpus), corpus.size(), (ws.dir / "rows.jsonl").string() + "\n    type: input_output");
  write_file(path, text);
  return path;
}

}  // namespace

TEST_CASE("logged loss: the mean of the steps since the last log, as HF's Trainer; exact across a resume") {
  Workspace every("log_every"), third("log_third"), resumed("log_resumed");
  Run a = run_train(every.config("max_steps: 6\n"));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  Run b = run_train(third.config("max_steps: 6\nlogging_steps: 3\nsave_steps: 2\n"));
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  const std::vector<double> step = logged_losses(every.out("metrics.jsonl")), mean = logged_losses(third.out("metrics.jsonl"));
  REQUIRE(step.size() == 6);
  REQUIRE(mean.size() == 2);
  CHECK(mean[0] == doctest::Approx((step[0] + step[1] + step[2]) / 3).epsilon(1e-6));
  CHECK(mean[1] == doctest::Approx((step[3] + step[4] + step[5]) / 3).epsilon(1e-6));
  // Resumed at step 4, inside the window 4..6: the step-6 line is the unbroken run's (the step-3
  // line comes with the checkpoint).
  Run c = run_train("--resume " + third.out("step_000004") + " --output_dir " + resumed.out());
  REQUIRE_MESSAGE(c.exit_code == 0, c.output);
  CHECK(train_records(resumed.out("metrics.jsonl")) == train_records(third.out("metrics.jsonl")));
}


TEST_CASE("Axolotl's fields: ppl and eval_ppl; tokens/trainable counts the labels that take part, exact across a resume") {
  Workspace full("tkps_full"), resumed("tkps_resumed"), off("tkps_off");
  Run a = run_train(segment_rows_config(full, "max_steps: 6\nsave_steps: 2\neval_steps: 3\n"));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  const std::vector<json> records = untimed_records(full.out("metrics.jsonl"));
  int64_t steps = 0, evaluations = 0;
  for (const json& r : records) {
    CAPTURE(r.dump());
    if (r.contains("loss")) {
      steps++;
      // Axolotl's round(math.exp(loss), 5).
      CHECK(r.at("ppl").get<double>() == doctest::Approx(std::exp(r.at("loss").get<double>())).epsilon(1e-6));
      // HF's labels != -100, unshifted: 4 rows a step of 2 labels each (the targets, shifted, are
      // as many here; the tokens 8 a row).
      CHECK(r.at("tokens/trainable") == 8 * r.at("step").get<int64_t>());
    } else {
      evaluations++;
      CHECK(r.at("eval_ppl").get<double>() == doctest::Approx(std::exp(r.at("eval_loss").get<double>())).epsilon(1e-6));
      CHECK_FALSE(r.contains("tokens/trainable"));
    }
  }
  CHECK(steps == 6);
  CHECK(evaluations == 3);  // steps 0 (Axolotl turns eval_on_start on with eval_steps), 3 and 6
  std::ifstream first(full.out("metrics.jsonl"));
  std::string line;
  while (std::getline(first, line) && line.find("\"loss\"") == std::string::npos) {
  }
  CHECK(json::parse(line).at("tokens/train_per_sec_per_gpu").get<double>() > 0);
  // The count goes on from the checkpoint's.
  Run b = run_train("--resume " + full.out("step_000004") + " --output_dir " + resumed.out());
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  CHECK(untimed_records(resumed.out("metrics.jsonl")) == records);
  // include_tkps: false leaves the token counts out, not the perplexities.
  Run c = run_train(segment_rows_config(off, "max_steps: 2\ninclude_tkps: false\n"));
  REQUIRE_MESSAGE(c.exit_code == 0, c.output);
  for (const json& r : untimed_records(off.out("metrics.jsonl"))) {
    CAPTURE(r.dump());
    CHECK_FALSE(r.contains("tokens/trainable"));
    CHECK_FALSE(r.contains("tokens/train_per_sec_per_gpu"));
    CHECK((r.contains("ppl") || r.contains("eval_ppl")));
  }
}

namespace {

// rl's run over one epoch of a reference fixture's rows (test_rl's), 4 rows a step, and the
// examples its data keys make, read here with the loader alone.
struct PreferenceEpoch {
  std::vector<json> records;
  ExampleSet examples;
};
PreferenceEpoch preference_epoch(const std::string& rows, const std::string& rl, int64_t steps) {
  TempDir work("num_tokens_" + rl);
  const std::string yaml = "base_model: " + std::string(LLM_HF_TRAJECTORY_DIR) + "/untied\ndatasets:\n  - path: " + rows +
                           "\n    type: chatml.prompt_pairs\nrl: " + rl + "\noutput_dir: " + work.file("out") +
                           "\ndataset_prepared_path: " + work.file("prepared") +
                           "\ndevice: cpu\nval_set_size: 0\nsave_strategy: 'no'\nsequence_len: 128\n"
                           "micro_batch_size: 2\ngradient_accumulation_steps: 2\nlogging_steps: 1\nmax_steps: " +
                           std::to_string(steps) + "\n";
  const std::string path = work.write("config.yaml", yaml);
  const Run run = run_train(path);
  REQUIRE_MESSAGE(run.exit_code == 0, run.output);
  PreferenceEpoch out;
  for (const json& r : untimed_records(work.file("out/metrics.jsonl")))
    if (r.contains("loss")) out.records.push_back(r);
  const TrainConfig config = load_config(path);
  const auto tokenizer = with_special_tokens(make_tokenizer(config.tokenizer_config), config.special_tokens, config.source);
  out.examples = load_examples(config.data, config.seed, *tokenizer);
  return out;
}

}  // namespace

TEST_CASE("TRL's num_tokens: DPO's every pair's two sequences so far, KTO's every row's sequence but its KL one") {
  // 16 pairs: 4 steps an epoch, each pair's chosen and rejected sequence (prompt and response) counted.
  const PreferenceEpoch dpo = preference_epoch(std::string(LLM_DPO_REFERENCE_DIR) + "/pairs.jsonl", "dpo", 4);
  REQUIRE(dpo.records.size() == 4);
  int64_t tokens = 0;
  for (int64_t e = 0; e < dpo.examples.size(); e++) tokens += dpo.examples.length(e);
  CHECK(dpo.examples.size() == 32);
  CHECK(dpo.records.back().at("num_tokens") == tokens);
  for (size_t i = 1; i < dpo.records.size(); i++)
    CHECK(dpo.records[i].at("num_tokens").get<int64_t>() > dpo.records[i - 1].at("num_tokens").get<int64_t>());
  // KTO's rows are cached as (prompt, completion): a row's training sequence is the two together
  // (none of these reaches sequence_len); its KL sequence, another row's completion after its
  // prompt, is forwarded too and not counted. 18 of the 19 rows fit sequence_len: 5 steps an epoch.
  const PreferenceEpoch kto = preference_epoch(std::string(LLM_KTO_REFERENCE_DIR) + "/rows.jsonl", "kto", 5);
  REQUIRE(kto.records.size() == 5);
  CHECK(kto.examples.size() == 36);
  int64_t sequences = 0;
  for (int64_t r = 0; 2 * r < kto.examples.size(); r++) {
    const int64_t n = kto.examples.length(2 * r) + kto.examples.length(2 * r + 1);
    CHECK(n <= 128);
    sequences += n;
  }
  CHECK(kto.records.back().at("num_tokens") == sequences);
  // SimPO (TRL's CPOTrainer) logs none.
  CHECK_FALSE(preference_epoch(std::string(LLM_DPO_REFERENCE_DIR) + "/pairs.jsonl", "simpo", 1).records.at(0).contains("num_tokens"));
}
