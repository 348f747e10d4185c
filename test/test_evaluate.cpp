// llm_train evaluate, Axolotl's `axolotl evaluate`: the model a config loads, measured without
// training on the training and validation rows, into output_dir/eval_summary.csv; a trained
// model (full or adapter) gives the eval_loss its run logged at its last step.
#include "test/train_fixture.h"

using namespace llm;
using namespace llm::testing;

namespace {

const std::string kRun = "max_steps: 4\neval_steps: 4\n";

// The value evaluate printed for `name` ("eval_loss: 5.25...").
double printed(const Run& r, const std::string& name) { return number_after(r.output, "\n" + name + ":"); }

// The eval_loss of the run's last evaluation record.
double last_eval_loss(const std::string& metrics) {
  const std::string text = read_file(metrics);
  return number_after(text.substr(text.rfind("\"eval_loss\"")), "\"eval_loss\":");
}

}  // namespace

TEST_CASE("evaluate: a trained model's eval_loss as its run logged it; both sets in eval_summary.csv") {
  Workspace ws("evaluate");
  const std::string config = ws.config(kRun);
  const Run run = run_train(config);
  REQUIRE_MESSAGE(run.exit_code == 0, run.output);
  const std::string eval_dir = (ws.dir / "eval").string();
  // The run's exported model (output_dir) as the base: the weights of its last evaluation.
  const Run eval = run_train("evaluate " + config + " --base_model " + ws.out() + " --output_dir " + eval_dir);
  REQUIRE_MESSAGE(eval.exit_code == 0, eval.output);
  CHECK(printed(eval, "eval_loss") == doctest::Approx(last_eval_loss(ws.out("metrics.jsonl"))).epsilon(1e-6));
  CHECK(printed(eval, "eval_ppl") == doctest::Approx(std::exp(printed(eval, "eval_loss"))).epsilon(1e-5));
  const double train_loss = printed(eval, "train_loss");
  CHECK(train_loss > 0);
  CHECK(train_loss < 5.5);  // trained: below the 259-way uniform's 5.56
  CHECK(eval.output.find("done: evaluated without training; the metrics are in " + eval_dir + "/eval_summary.csv") !=
        std::string::npos);
  // Axolotl's CSV: each metric once without its prefix, sorted; ppl only of the validation set.
  const std::string csv = read_file(eval_dir + "/eval_summary.csv");
  std::vector<std::string> names;
  std::istringstream lines(csv);
  for (std::string line; std::getline(lines, line);) names.push_back(line.substr(0, line.find(',')));
  CHECK(names == std::vector<std::string>{"metric", "loss", "ppl", "runtime", "samples_per_second", "steps_per_second"});
  CHECK(csv.find("metric,training,validation\r\n") == 0);
  CHECK(csv.find("\r\nppl,,") != std::string::npos);
  // Nothing of a run: no checkpoint, no metrics.jsonl, no export.
  for (const char* written : {"metrics.jsonl", "step_000001", "model.safetensors"})
    CHECK_MESSAGE(!fs::exists(fs::path(eval_dir) / written), written);
}

TEST_CASE("evaluate: an adapter from lora_model_dir on its base; without val rows, the training set alone") {
  Workspace ws("evaluate_lora");
  const std::string lora = "adapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\n";
  const std::string config = ws.config(kRun + lora);
  const Run run = run_train(config);
  REQUIRE_MESSAGE(run.exit_code == 0, run.output);
  const std::string eval_dir = (ws.dir / "eval").string();
  const Run eval = run_train("evaluate " + config + " --lora_model_dir " + ws.out() + " --output_dir " + eval_dir);
  REQUIRE_MESSAGE(eval.exit_code == 0, eval.output);
  CHECK(printed(eval, "eval_loss") == doctest::Approx(last_eval_loss(ws.out("metrics.jsonl"))).epsilon(1e-6));
  // No validation rows (and no eval_steps): the training set's column alone.
  const Run train_only = run_train("evaluate " + ws.config() + " --val_set_size 0 --output_dir " + eval_dir);
  REQUIRE_MESSAGE(train_only.exit_code == 0, train_only.output);
  CHECK(train_only.output.find("eval_loss") == std::string::npos);
  const std::string csv = read_file(eval_dir + "/eval_summary.csv");
  CHECK(csv.find("\r\nloss,") != std::string::npos);
  CHECK(csv.find(",\r\n") != std::string::npos);  // an empty validation column
}

TEST_CASE("evaluate: no config, refused in one line") {
  const Run none = run_train("evaluate");
  CHECK(none.exit_code == 2);
  CHECK(error_text(none) == "error: command line: evaluate needs a config (llm_train evaluate CONFIG.yaml)\n");
}
