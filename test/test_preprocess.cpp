// llm_train preprocess, Axolotl's `axolotl preprocess`: the datasets tokenized into the token
// cache a run of the same config then reuses, nothing trained, no weights read; bad input one line.
#include "test/train_fixture.h"

using namespace llm;
using namespace llm::testing;

TEST_CASE("preprocess: the token cache a run then reuses; the run trains as one that tokenized its own") {
  Workspace ws("preprocess"), fresh("preprocess_fresh");
  const std::string config = ws.config("max_steps: 3\n");
  const Run prep = run_train("preprocess " + config);
  REQUIRE_MESSAGE(prep.exit_code == 0, prep.output);
  const std::string prepared = (ws.dir / "prepared").string();
  CHECK(prep.output.find("done: the datasets are tokenized in " + prepared) != std::string::npos);
  CHECK(prep.output.find("rows: ") != std::string::npos);  // the summary a run's start-up shows
  CHECK(fs::exists(ws.dir / "prepared" / "tokens.bin"));
  // Nothing of a run: no checkpoint, no metrics, no model.
  for (const char* written : {"metrics.jsonl", "step_000001", "model.safetensors", "config.json"})
    CHECK_MESSAGE(!fs::exists(ws.dir / "out" / written), written);
  const Run run = run_train(config);
  REQUIRE_MESSAGE(run.exit_code == 0, run.output);
  CHECK(run.output.find("reusing token cache") != std::string::npos);
  const Run own = run_train(fresh.config("max_steps: 3\n"));
  REQUIRE_MESSAGE(own.exit_code == 0, own.output);
  CHECK(own.output.find("reusing token cache") == std::string::npos);
  const std::vector<std::string> reused = train_records(ws.out("metrics.jsonl"));
  CHECK(reused.size() == 3);
  CHECK(reused == train_records(fresh.out("metrics.jsonl")));
}

TEST_CASE("preprocess: without dataset_prepared_path, output_dir/prepared, as a run reads it; on 2 ranks, once") {
  Workspace ws("preprocess_default");
  std::string yaml = read_file(ws.config());
  yaml.erase(yaml.find("dataset_prepared_path:"), yaml.find('\n', yaml.find("dataset_prepared_path:")) -
                                                      yaml.find("dataset_prepared_path:") + 1);
  const std::string config = (ws.dir / "default.yaml").string();
  write_file(config, yaml);
  const Run prep = run_train("preprocess " + config, mpirun(2));
  REQUIRE_MESSAGE(prep.exit_code == 0, prep.output);
  CHECK(fs::exists(ws.dir / "out" / "prepared" / "tokens.bin"));
  const std::string done = "done: the datasets are tokenized in " + ws.out("prepared");
  const size_t at = prep.output.find(done);
  CHECK(at != std::string::npos);
  CHECK(prep.output.find(done, at + 1) == std::string::npos);  // rank 0 says it
  const Run run = run_train(config + " --max_steps 1");
  REQUIRE_MESSAGE(run.exit_code == 0, run.output);
  CHECK(run.output.find("reusing token cache " + ws.out("prepared")) != std::string::npos);
}

TEST_CASE("preprocess: a missing config or dataset, one line and exit 2, no cache written") {
  Workspace ws("preprocess_bad");
  const Run none = run_train("preprocess");
  CHECK(none.exit_code == 2);
  CHECK(error_text(none) == "error: command line: preprocess needs a config (llm_train preprocess CONFIG.yaml)\n");
  const Run missing = run_train("preprocess " + ws.config() + " --datasets '[{path: /nonexistent/rows.jsonl, type: alpaca}]'");
  CHECK(missing.exit_code == 2);
  const std::string error = error_text(missing);
  CHECK_MESSAGE(error.find("/nonexistent/rows.jsonl") != std::string::npos, missing.output);
  CHECK(std::count(error.begin(), error.end(), '\n') == 1);
  CHECK(!fs::exists(ws.dir / "prepared" / "tokens.bin"));
}
