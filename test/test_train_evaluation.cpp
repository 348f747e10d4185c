// Evaluation in the training loop end to end on a small model: early stopping's patience,
// load_best_model_at_end, eval_steps as a share of the run, eval_on_start, save_strategy best.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "test/train_fixture.h"

using namespace llm;
using namespace llm::testing;

TEST_CASE("early stopping: stops after exactly `patience` evaluations without improvement") {
  Workspace ws("early");
  // A threshold no step can beat: only the first evaluation resets the patience. As HF's Trainer,
  // the best is still any strictly lower eval_loss (the loss falls in these 4 steps); step 4 is no
  // save step, and as HF's no checkpoint is written at the stop: none to load, and none on disk.
  Run r = run_train(ws.config("max_steps: 50\neval_steps: 1\nsave_steps: 5\n"
                              "early_stopping_patience: 3\nearly_stopping_threshold: 100\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("early stopping: 3 evaluations without improvement") != std::string::npos);
  CHECK(r.output.find("at step 4 (not a save step, so no checkpoint holds it)") != std::string::npos);
  CHECK(list_checkpoints(ws.out()).empty());
  CHECK(r.output.find("the final model is the weights of") == std::string::npos);
  CHECK(train_records(ws.out("metrics.jsonl")).size() == 4);
}

TEST_CASE("early stopping: a resume of the checkpoint written as the run stopped trains nothing more") {
  Workspace ws("early_resume");
  const std::string moved = ws.out("moved");
  Run r = run_train(ws.config("max_steps: 50\neval_steps: 1\nsave_steps: 1\n"
                              "early_stopping_patience: 2\nearly_stopping_threshold: 100\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  REQUIRE(contains(r.output, "early stopping: 2 evaluations without improvement"));
  REQUIRE(fs::exists(ws.out("step_000003")));
  // The uninterrupted run ended at step 3: so does its continuation, with the same export.
  Run again = run_train("--resume " + ws.out("step_000003") + " --output_dir " + moved);
  REQUIRE_MESSAGE(again.exit_code == 0, again.output);
  CHECK(contains(again.output, "early stopping (at the checkpoint's step, before this resume): 2 evaluations without "
                               "improvement; best eval_loss "));
  CHECK(contains(again.output, "done: 3 steps (none trained by this run)"));
  CHECK(train_records(moved + "/metrics.jsonl") == train_records(ws.out("metrics.jsonl")));
  CHECK(read_file(moved + "/model.safetensors") == read_file(ws.out("model.safetensors")));
}

namespace {

// The steps of metrics.jsonl's evaluation records, and their eval_loss.
std::vector<std::pair<int64_t, double>> eval_records(const std::string& metrics_path) {
  std::vector<std::pair<int64_t, double>> out;
  std::ifstream in(metrics_path);
  for (std::string line; std::getline(in, line);)
    if (line.find("\"eval_loss\"") != std::string::npos)
      out.push_back({std::stoll(line.substr(line.find("\"step\": ") + 8)),
                     std::stod(line.substr(line.find("\"eval_loss\": ") + 13))});
  return out;
}

std::vector<int64_t> eval_steps_logged(const std::string& metrics_path) {
  std::vector<int64_t> steps;
  for (const auto& [step, loss] : eval_records(metrics_path)) steps.push_back(step);
  return steps;
}

}  // namespace

// HF's load_best_model_at_end (Axolotl sets it with early stopping too): the export is the best
// evaluation's checkpoint, not the last step's weights, and rotation keeps that checkpoint.
TEST_CASE("load_best_model_at_end: the exported model is the best evaluation's checkpoint") {
  Workspace ws("load_best");
  // A rate high enough that eval_loss rises after its best (step 2 of 6: 5.03, then 7.2 and 6.8).
  Run r = run_train(ws.config("max_steps: 6\neval_steps: 2\nsave_steps: 2\nlearning_rate: 0.5\n"
                              "save_total_limit: 1\nload_best_model_at_end: true\nmetric_for_best_model: eval_loss\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const std::vector<std::pair<int64_t, double>> evals = eval_records(ws.out("metrics.jsonl"));
  REQUIRE(evals.size() == 4);
  REQUIRE(evals.front().first == 0);  // eval_on_start's, which is never a best (HF's bookkeeping)
  const auto best = std::min_element(evals.begin() + 1, evals.end(),
                                     [](const auto& a, const auto& b) { return a.second < b.second; });
  REQUIRE_MESSAGE(best->first < 6, "the test needs a best before the last step");
  const std::string best_dir = ws.out(checkpoint_dir_name(best->first));
  CHECK(r.output.find("the final model is the weights of " + best_dir) != std::string::npos);
  // save_total_limit 1 keeps the newest beside the best while training, and the best alone at the
  // end (HF's train() deletes the others).
  CHECK(fs::exists(best_dir + "/model.bin"));
  CHECK(list_checkpoints(ws.out()).size() == 1);
  CHECK_MESSAGE(contains(r.output, ", checkpoint " + best_dir + "\n"), r.output);  // the one left
  const CheckpointContents saved = load_checkpoint(best_dir);
  const SafetensorsFile exported(ws.out("model.safetensors"));
  for (const NamedTensor& t : saved.model.tensors) {
    CAPTURE(t.name);
    CHECK(exported.read(t.name, DType::f32).to_floats() == t.tensor.to_floats());
  }
  // A resume keeps the bookkeeping: stopped at step 4, resumed to 6, the same checkpoint is loaded.
  Workspace split("load_best_resume");
  REQUIRE(run_train(split.config("max_steps: 4\neval_steps: 2\nsave_steps: 2\nlearning_rate: 0.5\n"
                                 "load_best_model_at_end: true\n")).exit_code == 0);
  Run resumed = run_train("--resume " + split.out("step_000004") + " --max_steps 6");
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  CHECK(resumed.output.find("the final model is the weights of " + split.out(checkpoint_dir_name(best->first))) !=
        std::string::npos);
  // Resumed into another output_dir, the best checkpoint is still the one where it was written
  // (HF's best_model_checkpoint is its path), and the new checkpoints say so for a later resume.
  Workspace elsewhere("load_best_elsewhere");
  const std::string other_out = (elsewhere.dir / "out").string();
  Run moved = run_train("--resume " + split.out("step_000004") + " --max_steps 6 --output_dir " + other_out);
  REQUIRE_MESSAGE(moved.exit_code == 0, moved.output);
  const std::string where_best = "the final model is the weights of " + split.out(checkpoint_dir_name(best->first));
  CHECK_MESSAGE(moved.output.find(where_best) != std::string::npos, moved.output);
  Run again = run_train("--resume " + other_out + "/step_000006 --max_steps 7 --output_dir " + other_out + "/more");
  REQUIRE_MESSAGE(again.exit_code == 0, again.output);
  CHECK_MESSAGE(again.output.find("the final model is the weights of ") != std::string::npos, again.output);
  // Moved with its run's directory, the best checkpoint is found beside the one resumed; gone, the
  // run warns as HF's Trainer does and exports the last step's weights.
  const std::string home = (elsewhere.dir / "moved").string(), best_name = checkpoint_dir_name(best->first);
  fs::rename(split.dir / "out", home);
  Run found = run_train("--resume " + home + "/step_000006 --max_steps 7 --output_dir " + home);
  REQUIRE_MESSAGE(found.exit_code == 0, found.output);
  CHECK_MESSAGE(found.output.find("the final model is the weights of " + home + "/" + best_name) != std::string::npos,
                found.output);
  fs::remove_all(home + "/" + best_name);
  Run lost = run_train("--resume " + home + "/step_000006 --max_steps 7 --output_dir " + home + "/lost");
  REQUIRE_MESSAGE(lost.exit_code == 0, lost.output);
  CHECK_MESSAGE(lost.output.find("could not locate this run's checkpoint of step " + std::to_string(best->first)) !=
                    std::string::npos, lost.output);
  CHECK(fs::exists(home + "/lost/model.safetensors"));
  // Without it (and without early stopping) the last step's weights are exported.
  Workspace last("load_best_off");
  REQUIRE(run_train(last.config("max_steps: 6\neval_steps: 2\nsave_steps: 2\nlearning_rate: 0.5\n")).exit_code == 0);
  const SafetensorsFile plain(last.out("model.safetensors"));
  const CheckpointContents final_step = load_checkpoint(last.out("step_000006"));
  CHECK(plain.read(final_step.model.tensors[0].name, DType::f32).to_floats() == final_step.model.tensors[0].tensor.to_floats());
}

TEST_CASE("eval_steps below 1 is HF's share of the total steps; unset, evaluation and saving come once an epoch and at the end") {
  Workspace share("eval_share"), unset("eval_unset");
  Run a = run_train(share.config("max_steps: 8\neval_steps: 0.25\nsave_steps: 0.5\n"));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  CHECK(eval_steps_logged(share.out("metrics.jsonl")) == std::vector<int64_t>{0, 2, 4, 6, 8});
  CHECK((fs::exists(share.out("step_000004")) && fs::exists(share.out("step_000008")) && !fs::exists(share.out("step_000006"))));
  // Axolotl's defaults (eval_strategy / save_strategy epoch): a run that ends inside its first
  // epoch evaluates and saves at its end, as HF's Trainer does on the epoch it cut short; with
  // neither eval_steps nor eval_strategy Axolotl sets no eval_on_start.
  Run b = run_train(unset.config("max_steps: 3\n"));
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  CHECK(eval_steps_logged(unset.out("metrics.jsonl")) == std::vector<int64_t>{3});
  CHECK(fs::exists(unset.out("step_000003")));
}

// transformers 5's Trainer evaluates at the last step under eval_strategy steps even where
// eval_steps does not divide it (its PR #44146; the 4.x Trainer saved it without evaluating), so
// load_best_model_at_end may pick that step; the trajectory fixtures (transformers 5.24) hold it too.
TEST_CASE("eval_steps: the last step is evaluated too, as transformers 5's Trainer does") {
  Workspace ws("eval_at_end");
  Run r = run_train(ws.config("max_steps: 5\neval_steps: 2\nsave_steps: 2\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(eval_steps_logged(ws.out("metrics.jsonl")) == std::vector<int64_t>{0, 2, 4, 5});
  CHECK(fs::exists(ws.out("step_000005")));
}

// Axolotl's builder turns on HF's eval_on_start beside eval_steps or any eval_strategy: one
// evaluation before the first step (its eval_loss counts for early stopping's patience, not as a
// best); eval_strategy no then evaluates at the start alone. Not again after a resume, where HF's
// Trainer repeats the checkpoint step's evaluation (Axolotl's #3305): the resume continues exactly.
TEST_CASE("eval_on_start: an evaluation before a fresh run's first step, not after a resume") {
  Workspace ws("eval_on_start"), no("eval_strategy_no");
  REQUIRE(run_train(ws.config("max_steps: 4\neval_steps: 2\nsave_steps: 2\n")).exit_code == 0);
  CHECK(eval_steps_logged(ws.out("metrics.jsonl")) == std::vector<int64_t>{0, 2, 4});
  Run resumed = run_train("--resume " + ws.out("step_000002") + " --max_steps 4");
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  CHECK(resumed.output.find("eval step 2 |") == std::string::npos);
  CHECK(eval_steps_logged(ws.out("metrics.jsonl")) == std::vector<int64_t>{0, 2, 4});
  Run r = run_train(no.config("max_steps: 3\neval_strategy: \"no\"\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(eval_steps_logged(no.out("metrics.jsonl")) == std::vector<int64_t>{0});
  // Resumed at step 2 with 1 of its 3 evaluations of patience used (the step-1 evaluation is the
  // best; a threshold of 100 lets no later one improve), steps 3 and 4 use the other two, as in a
  // run that never stopped: the stop comes after step 4. HF's repeated evaluation at step 2 would
  // have stopped it after step 3.
  Workspace early("eval_on_start_patience"), straight("eval_on_start_patience_straight");
  const std::string keys = "eval_steps: 1\nsave_steps: 1\nearly_stopping_patience: 3\nearly_stopping_threshold: 100\n";
  REQUIRE(run_train(early.config("max_steps: 2\n" + keys)).exit_code == 0);
  Run more = run_train("--resume " + early.out("step_000002") + " --max_steps 50");
  REQUIRE_MESSAGE(more.exit_code == 0, more.output);
  CHECK(more.output.find("early stopping: 3 evaluations without improvement") != std::string::npos);
  CHECK(train_records(early.out("metrics.jsonl")).size() == 4);
  Run whole = run_train(straight.config("max_steps: 50\n" + keys));
  REQUIRE_MESSAGE(whole.exit_code == 0, whole.output);
  CHECK(eval_records(straight.out("metrics.jsonl")) == eval_records(early.out("metrics.jsonl")));
}

TEST_CASE("save_strategy best: a checkpoint at each evaluation with a new best eval_loss, nowhere else") {
  Workspace ws("save_best");
  // A learning rate high enough that some evaluations get worse.
  Run r = run_train(ws.config("max_steps: 12\neval_steps: 1\nsave_strategy: best\nlearning_rate: 0.1\nsave_total_limit: 20\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  std::set<int64_t> expected, saved;  // not the last step unless it is a best (HF saves it under steps only)
  double best = INFINITY;
  for (const auto& [step, loss] : eval_records(ws.out("metrics.jsonl")))
    if (step > 0 && loss < best) best = loss, expected.insert(step);  // step 0: eval_on_start's
  for (const auto& entry : fs::directory_iterator(ws.out()))
    if (entry.path().filename().string().rfind("step_", 0) == 0)
      saved.insert(std::stoll(entry.path().filename().string().substr(5)));
  CHECK(saved == expected);
  CHECK(saved.size() < 12);  // some evaluation did not improve
  CHECK(fs::exists(ws.out("model.safetensors")));  // the final weights, exported whatever was saved
}

// metric_for_best_model alone (no load_best_model_at_end): HF's Trainer still tracks
// best_model_checkpoint at each save, rotation keeps it, and a limit of 1 ends with it alone.
TEST_CASE("metric_for_best_model alone: the best checkpoint is kept through rotation") {
  Workspace ws("metric_best");
  Run r = run_train(ws.config("max_steps: 12\neval_steps: 1\nsave_steps: 1\nlearning_rate: 0.1\nsave_total_limit: 1\n"
                              "metric_for_best_model: eval_loss\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  int64_t best_step = -1;
  double best = INFINITY;
  for (const auto& [step, loss] : eval_records(ws.out("metrics.jsonl")))
    if (step > 0 && loss < best) best = loss, best_step = step;
  std::set<int64_t> saved;
  for (const auto& entry : fs::directory_iterator(ws.out()))
    if (entry.path().filename().string().rfind("step_", 0) == 0)
      saved.insert(std::stoll(entry.path().filename().string().substr(5)));
  CHECK(saved == std::set<int64_t>{best_step});
  CHECK(best_step < 12);  // some later evaluation was worse, so the kept one is not merely the newest
}

TEST_CASE("save_strategy no: no checkpoint at all, the final weights still exported") {
  Workspace ws("save_no");
  Run r = run_train(ws.config("max_steps: 3\nsave_strategy: 'no'\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  for (const auto& entry : fs::directory_iterator(ws.out()))
    CHECK_MESSAGE(entry.path().filename().string().rfind("step_", 0) != 0, entry.path());
  CHECK(fs::exists(ws.out("model.safetensors")));
  CHECK(r.output.find(", checkpoint ") == std::string::npos);  // the done line names none
}
