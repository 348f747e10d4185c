// metrics.jsonl's training and evaluation records end to end on a small model: the logged loss as
// HF's Trainer averages it, and the fields AxolotlTrainer.log adds to supervised fine-tuning's
// (ppl, eval_ppl, tokens/trainable, tokens/train_per_sec_per_gpu), each exact across a resume.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test/train_fixture.h"

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
