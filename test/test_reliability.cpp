// What makes a run refuse early or resume safely, through the llm_train binary: sealed
// checkpoints (a file from another step, an edited config, a legacy one without manifest),
// trainer.bin's values range-checked, a resume on other data or base weights, a malformed metrics
// line, output_dir and its lock, save_only_model's checkpoints, and the memory estimate. Each error is one line with exit code 2.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "model/hf_checkpoint.h"
#include "test/train_fixture.h"
#include "train/config.h"
#include "train/memory_plan.h"
#include "train/metrics.h"

using namespace llm;
using namespace llm::testing;

namespace {
std::string run_id(const std::string& checkpoint) {
  return nlohmann::json::parse(read_file(checkpoint + "/manifest.json"))["run_id"].get<std::string>();
}

bool one_line_error(const Run& r) {
  const std::string e = error_text(r);
  return !e.empty() && std::count(e.begin(), e.end(), '\n') == 1;
}
}  // namespace

TEST_CASE("sealed checkpoints: a file from another step or an edited config is refused; auto-resume falls back") {
  Workspace ws("sealed");
  REQUIRE(run_train(ws.config("max_steps: 4\nsave_steps: 2\neval_strategy: no\n")).exit_code == 0);
  const std::string two = ws.out("step_000002"), four = ws.out("step_000004");

  const std::string config = read_file(two + "/config.yaml");
  std::string edited = config;
  const auto at = edited.find("learning_rate: 0.003");
  REQUIRE(at != std::string::npos);
  edited[at + 19] = '4';  // learning_rate: 0.004, the same length
  write_file(two + "/config.yaml", edited);
  Run r = run_train("--resume " + two);
  CHECK(r.exit_code == 2);
  CHECK(one_line_error(r));
  CHECK(error_text(r).find(two + "/config.yaml: checksum ") != std::string::npos);
  CHECK(error_text(r).find(", but manifest.json records ") != std::string::npos);
  write_file(two + "/config.yaml", config);

  fs::copy_file(two + "/trainer.bin", four + "/trainer.bin", fs::copy_options::overwrite_existing);
  // Its size may differ by a digit of a logged loss; with the size the manifest records (as when
  // both have the same length), its step is what gives it away.
  std::string manifest = read_file(four + "/manifest.json");
  const size_t bytes = manifest.find("\"bytes\": ", manifest.find("\"trainer.bin\"")) + 9;
  manifest.replace(bytes, manifest.find(',', bytes) - bytes, std::to_string(fs::file_size(four + "/trainer.bin")));
  write_file(four + "/manifest.json", manifest);
  r = run_train("--resume " + four);
  CHECK(r.exit_code == 2);
  CHECK(error_text(r) == "error: " + four + "/trainer.bin: written at step 2, but manifest.json seals step 4 "
                                           "(a file from another checkpoint)\n");
  r = run_train(ws.config("max_steps: 5\nsave_steps: 2\neval_strategy: no\nauto_resume_from_checkpoints: true\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("written at step 2, but manifest.json seals step 4 (a file from another "
                      "checkpoint); skipping " + four) != std::string::npos);
  CHECK(r.output.find("resumed from " + two + " at step 2") != std::string::npos);
  CHECK(run_id(four) == run_id(two));  // the resumed run seals its checkpoints as the same run
  // None left to resume: the refusal does not advise the auto-resume that just skipped them all.
  for (const std::string& dir : {two, four, ws.out("step_000005")}) write_file(dir + "/config.yaml", "cut");
  r = run_train(ws.config("max_steps: 5\neval_strategy: no\nauto_resume_from_checkpoints: true\noverwrite_output_dir: false\n"));
  CHECK(r.exit_code == 2);
  CHECK(contains(error_text(r), " holds 3 checkpoint(s), none of them one auto_resume_from_checkpoints can resume "
                                "(each said why above), newest " + ws.out("step_000005") + "; choose another output_dir"));
}

TEST_CASE("legacy checkpoint without manifest resumes with a warning; trainer.bin values are range-checked") {
  Workspace ws("legacy");
  REQUIRE(run_train(ws.config("max_steps: 2\nsave_steps: 2\n")).exit_code == 0);
  const std::string ckpt = ws.out("step_000002");
  fs::remove(ckpt + "/manifest.json");
  std::ofstream(ws.out("metrics.jsonl"), std::ios::app)
      << "{\"step\": x, \"loss\": 1}\n"                                // a bad line
      << "{\"step\": 1, \"loss\": 1}" << '\0' << "junk\n";  // a record's head, then a NUL byte

  Run r = run_train("--resume " + ckpt + " --max_steps 3");
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("warning: " + ckpt + ": no manifest.json: an unsealed checkpoint from before "
                      "manifests (legacy)") != std::string::npos);
  CHECK(r.output.find("warning: " + ws.out("metrics.jsonl") + ": skipped 2 line(s) that are not metrics "
                      "records") != std::string::npos);
  CHECK(train_records(ws.out("metrics.jsonl")).size() == 3);
  // Its run cannot be told, so checkpoints in another directory are another run's, and later ones
  // beside it a continuation that going on would mix with this one.
  Workspace other("legacy_other");
  REQUIRE(run_train(other.config("max_steps: 4\nsave_steps: 4\n")).exit_code == 0);
  r = run_train("--resume " + ckpt + " --output_dir " + other.out() + " --max_steps 4 --overwrite_output_dir false");
  CHECK(r.exit_code == 2);
  CHECK(contains(error_text(r), "holds 1 checkpoint(s) of another run than " + ckpt + "'s, newest " +
                                    other.out("step_000004")));
  CHECK(fs::exists(other.out("step_000004/model.bin")));
  r = run_train("--resume " + ckpt + "/ --max_steps 4 --overwrite_output_dir false");
  CHECK(r.exit_code == 2);
  CHECK(contains(error_text(r), "holds 1 checkpoint(s) of this run after " + ckpt + "/, newest " + ws.out("step_000003")));
  r = run_train("--resume step_000002 --max_steps 4 --overwrite_output_dir false", "cd " + ws.out() + " && ");
  CHECK(r.exit_code == 2);  // named relatively, the same: it sits beside them
  CHECK(contains(error_text(r), "holds 1 checkpoint(s) of this run after step_000002, newest "));
  fs::remove_all(ws.out("step_000003"));

  // Without a manifest to seal them, each value is still checked, naming the file and the key.
  struct Case {
    std::string file, key, value, expect;
  };
  for (const Case& c : {Case{"trainer.bin", "step", "-1", "metadata step: expected an integer in [0, "},
                        Case{"trainer.bin", "bad_steps", "1e3", "metadata bad_steps: expected an integer"},
                        Case{"trainer.bin", "bad_steps", "3", "metadata bad_steps: expected an integer in [0, 2], got '3'"},
                        Case{"trainer.bin", "data_epoch", "1000000", "metadata data_epoch: expected an integer in [0, 2]"},
                        Case{"trainer.bin", "data_layout", "foo", "metadata data_layout: expected example_rows, got 'foo'"},
                        Case{"trainer.bin", "best_checkpoint_dir", "/elsewhere",
                             "metadata best_checkpoint_dir: expected the checkpoint directory of step 2, got '/elsewhere'"},
                        Case{"trainer.bin", "best_eval_loss", "nan",
                             "metadata best_eval_loss: expected a finite loss or 'none', got 'nan'"},
                        Case{"optimizer.bin", "steps_taken", "99",
                             "metadata steps_taken: expected an integer in [0, 2], got '99'"},
                        // LISA's per-tensor counts of missed AdamW updates.
                        Case{"optimizer.bin", "missed_updates", "1,x",
                             "metadata missed_updates: expected comma-separated integers in [0, 2], got '1,x'"},
                        Case{"optimizer.bin", "missed_updates", "1,2",
                             "metadata missed_updates: AdamW: 2 counts of missed updates for"}}) {
    CAPTURE(c.key);
    const std::string path = ckpt + "/" + c.file;
    const std::string pristine = read_file(path);
    TensorFile file = read_tensor_file(path);
    file.metadata[c.key] = c.value;
    write_tensor_file(path, file);
    Run bad = run_train("--resume " + ckpt);
    CHECK(bad.exit_code == 2);
    CHECK(one_line_error(bad));
    CHECK_MESSAGE(error_text(bad).find(path + ": " + c.expect) != std::string::npos, error_text(bad));
    write_file(path, pristine);
  }
}

// The command line's own mistakes: each one line naming what was expected, exit 2.
TEST_CASE("command-line mistakes: one line each, exit 2") {
  Workspace ws("cli");
  const std::string cfg = ws.config("max_steps: 1\n");
  const std::pair<std::string, std::string> cases[] = {
      {"", "usage: llm_train CONFIG.yaml"},
      {"--resume", "error: command line: --resume needs a checkpoint directory"},
      {"--resume " + ws.out("none"), "not a checkpoint directory"},
      {cfg + " --max_steps", "error: command line: --max_steps needs a value"},
      {cfg + " other.yaml", "error: command line: expected --key value, got 'other.yaml'"},
      {cfg + " --max_steps abc", "--max_steps: expected an integer >= 1, got 'abc'"},
      {cfg + " --output_dir ''", "error: command line: --output_dir needs a value, got ''"},
      {"--keys extra", "error: command line: --keys takes nothing after it, got 'extra'"},
      {"--help extra", "error: command line: --help takes nothing after it, got 'extra'"},
      {"--max_steps 3 " + cfg, "error: command line: expected CONFIG.yaml, --resume DIR, merge-lora, preprocess, evaluate, inference, --keys or --help first, got '--max_steps'"},
      {"--resum " + cfg, "got '--resum'"},
      {cfg + " --output_dir --logging_steps 5",
       "error: command line: --output_dir needs a value, got the flag '--logging_steps' (a value that starts with -- "
       "is written --output_dir=VALUE)"},
      {cfg + " --keys", "error: command line: --keys comes first, in place of the config (llm_train --keys), got it after one"},
      {cfg + " --resume " + ws.out(), "error: command line: --resume comes first, in place of the config (llm_train --resume DIR)"},
  };
  for (const auto& [args, message] : cases) {
    CAPTURE(args);
    const Run r = run_train(args);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, message));
  }
  CHECK(!fs::exists(ws.out()));  // none of them started a run
}

TEST_CASE("a resume whose max_steps ends before the checkpoint's step is refused, nothing written") {
  Workspace ws("resume_short");
  REQUIRE(run_train(ws.config("max_steps: 4\nsave_steps: 4\n")).exit_code == 0);
  const std::string four = ws.out("step_000004"), metrics = read_file(ws.out("metrics.jsonl"));
  const Run r = run_train("--resume " + four + " --max_steps 2");
  CHECK(r.exit_code == 2);
  CHECK(one_line_error(r));
  CHECK(contains(error_text(r), "max_steps: expected at least step 4 of " + four + ", which this run resumes, got 2 steps"));
  CHECK(read_file(ws.out("metrics.jsonl")) == metrics);
  // Refused before the data is read: a config of other data leaves the token cache as it was.
  const std::string cache = read_file((ws.dir / "prepared" / "tokens.bin").string());
  write_file((ws.dir / "other.txt").string(), "other text, tokenized into another cache\n");
  std::string other = read_file(ws.config("max_steps: 2\nresume_from_checkpoint: " + four + "\n"));
  other.replace(other.find((ws.dir / "corpus.txt").string()), (ws.dir / "corpus.txt").string().size(),
                (ws.dir / "other.txt").string());
  write_file((ws.dir / "other.yaml").string(), other);
  CHECK(run_train((ws.dir / "other.yaml").string()).exit_code == 2);
  CHECK(read_file((ws.dir / "prepared" / "tokens.bin").string()) == cache);
  const Run at_end = run_train("--resume " + four);  // at its end already: nothing to do, not an error
  CHECK(at_end.exit_code == 0);
  CHECK(contains(at_end.output, "done: 4 steps (none trained by this run)"));
}

TEST_CASE("output_dir: a file, a path under a file, base_model's directory or a checkpoint is refused before anything else") {
  Workspace ws("outdir");
  const std::string file = (ws.dir / "out").string();
  write_file(file, "not a directory\n");
  Run r = run_train(ws.config("max_steps: 1\n"));
  CHECK(r.exit_code == 2);
  CHECK(r.output == "error: " + (ws.dir / "config.yaml").string() +
                        ": output_dir: expected a directory, got a file: " + file + "\n");
  r = run_train(ws.config("max_steps: 1\n") + " --output_dir " + file + "/sub");
  CHECK(r.exit_code == 2);
  CHECK(one_line_error(r));
  CHECK(error_text(r).find("output_dir: expected a directory that can be created, got " + file + "/sub") !=
        std::string::npos);
  // A checkpoint's name on something else would fail at the first save, the steps before it lost.
  fs::remove(file);
  fs::create_directories(ws.out());
  struct Case {
    std::function<void(const std::string&)> make;
    std::string got;
  };
  for (const Case& c : {Case{[](const std::string& p) { fs::create_symlink("step_000002", p); }, "a loop of symbolic links"},
                        Case{[](const std::string& p) { fs::create_symlink("nowhere", p); }, "a symbolic link to nothing"},
                        Case{[](const std::string& p) { write_file(p, "x"); }, "a file"}}) {
    const std::string step = ws.out("step_000002");
    c.make(step);
    r = run_train(ws.config("max_steps: 2\n"));
    CHECK(r.exit_code == 2);
    CHECK(error_text(r) == "error: " + (ws.dir / "config.yaml").string() + ": output_dir: " + step +
                               ": expected a checkpoint directory, got " + c.got + "; move it away\n");
    fs::remove(step);
  }
  fs::create_directories(ws.out("latest"));
  r = run_train(ws.config("max_steps: 2\n"));
  CHECK(r.exit_code == 2);
  CHECK(error_text(r) == "error: " + (ws.dir / "config.yaml").string() + ": output_dir: " + ws.out("latest") +
                             ": expected the file naming the newest checkpoint, got a directory; move it away\n");
  fs::remove(ws.out("latest"));
  REQUIRE(run_train(ws.config("max_steps: 2\n")).exit_code == 0);
  // The export would replace the base's own weights.
  r = run_train(ws.config("max_steps: 2\nbase_model: " + ws.out() + "\n") + " --output_dir " + ws.out() + "/");
  CHECK(r.exit_code == 2);
  CHECK(error_text(r) == "error: " + (ws.dir / "config.yaml").string() + ": output_dir: " + ws.out() +
                             "/ is base_model's directory, whose weights the final export would replace; choose another\n");
  // So would a merge_lora run's merged model in output_dir/merged.
  const fs::path merged_base = ws.dir / "stage2" / "merged";
  fs::create_directories(merged_base);
  for (const char* file : {"config.json", "model.safetensors"}) fs::copy_file(ws.out(file), merged_base / file);
  r = run_train(ws.config("max_steps: 2\nadapter: lora\nlora_target_linear: true\nmerge_lora: true\nbase_model: " +
                          merged_base.string() + "\n") + " --output_dir " + (ws.dir / "stage2").string());
  CHECK(r.exit_code == 2);
  CHECK(error_text(r) == "error: " + (ws.dir / "config.yaml").string() + ": output_dir: " + merged_base.string() +
                             " is base_model's directory, whose weights the merged export would replace; choose another\n");
  // A checkpoint as output_dir: its sealed metrics.jsonl would be replaced, and it could not resume.
  const std::string checkpoint = ws.out("step_000002"), sealed_log = read_file(checkpoint + "/metrics.jsonl");
  for (const std::string& command : {ws.config("max_steps: 1\n") + " --output_dir " + checkpoint,
                                     "--resume " + checkpoint + " --output_dir " + checkpoint + " --max_steps 3"}) {
    CAPTURE(command);
    r = run_train(command);
    CHECK(r.exit_code == 2);
    CHECK(one_line_error(r));
    CHECK(contains(error_text(r), "output_dir: " + checkpoint + " is a checkpoint, whose files this run would replace; "
                                  "resume it (--resume " + checkpoint + ") into another output_dir, or choose another"));
  }
  CHECK(read_file(checkpoint + "/metrics.jsonl") == sealed_log);
}

// The loaders' refusal of too few rows for one batch names the config, as the data's own do.
TEST_CASE("too few validation rows for one eval batch: one line naming the config") {
  Workspace ws("eval_batch_rows");
  Run r = run_train(ws.config("max_steps: 1\nval_set_size: 2\neval_batch_size: 3\ndataloader_drop_last: true\n"));
  CHECK(r.exit_code == 2);
  CHECK(one_line_error(r));
  CHECK_MESSAGE(error_text(r).rfind("error: " + (ws.dir / "config.yaml").string() +
                                        ": the datasets give 2 validation rows, fewer than an eval batch of 3", 0) == 0,
                error_text(r));
}

TEST_CASE("a new run over an earlier run's checkpoints is refused, nothing touched, unless overwrite_output_dir") {
  Workspace ws("overwrite");
  REQUIRE(run_train(ws.config("max_steps: 2\nsave_steps: 1\n")).exit_code == 0);
  const std::string two = ws.out("step_000002");
  const std::string model = read_file(two + "/model.bin"), metrics = read_file(ws.out("metrics.jsonl"));
  // The fixture's configs allow overwriting (tests rerun one workspace); a user's default does not.
  Run r = run_train(ws.config("max_steps: 2\nsave_steps: 1\nseed: 8\noverwrite_output_dir: false\n"));
  CHECK(r.exit_code == 2);
  CHECK(one_line_error(r));
  CHECK(error_text(r) == "error: " + (ws.dir / "config.yaml").string() + ": output_dir: " + (ws.dir / "out").string() +
                             " holds 2 checkpoint(s) of an earlier run, newest " + two + "; resume it (--resume " +
                             two + ", or auto_resume_from_checkpoints: true), choose another output_dir, or set "
                             "overwrite_output_dir: true to replace them\n");
  CHECK(read_file(two + "/model.bin") == model);
  CHECK(read_file(ws.out("metrics.jsonl")) == metrics);
  Run over = run_train(ws.config("max_steps: 2\nsave_steps: 1\nseed: 8\n"));
  REQUIRE_MESSAGE(over.exit_code == 0, over.output);
  CHECK(read_file(two + "/model.bin") != model);
}

TEST_CASE("a resume into an output_dir holding another run's checkpoints is refused; overwrite_output_dir removes them") {
  Workspace a("other_run_a"), b("other_run_b");
  REQUIRE(run_train(a.config("max_steps: 4\nsave_steps: 2\n")).exit_code == 0);
  const std::string a_two = a.out("step_000002"), a_four = a.out("step_000004");
  const std::string a_model = read_file(a_four + "/model.bin");
  REQUIRE(run_train(b.config("max_steps: 2\nsave_steps: 1\noverwrite_output_dir: false\n")).exit_code == 0);
  Run r = run_train("--resume " + b.out("step_000001") + " --output_dir " + a.out());
  CHECK(r.exit_code == 2);
  CHECK(one_line_error(r));
  CHECK(error_text(r).find("output_dir: " + a.out() + " holds 2 checkpoint(s) of another run than " +
                           b.out("step_000001") + "'s, newest " + a_four +
                           "; resume into another output_dir (--output_dir), or set overwrite_output_dir: true") !=
        std::string::npos);
  CHECK(read_file(a_four + "/model.bin") == a_model);
  // Told to replace them, the resumed run's first checkpoint (step 2, over run a's) removes the rest.
  REQUIRE(run_train(b.config("max_steps: 2\nsave_steps: 1\n")).exit_code == 0);
  r = run_train("--resume " + b.out("step_000001") + " --output_dir " + a.out());
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("overwrite_output_dir: removed 1 checkpoint(s) of an earlier run from " + a.out()) !=
        std::string::npos);
  CHECK(!fs::exists(a_four));
  CHECK(run_id(a_two) == run_id(b.out("step_000001")));
}

// Resumed from step 2 in the directory that holds its steps 4 and 6, the run would replace step 4
// and leave step 6 of the continuation it abandons, where a later auto-resume would pick it up.
TEST_CASE("a resume of an earlier checkpoint beside later ones of its run is refused; overwrite_output_dir removes them") {
  Workspace ws("abandoned");
  REQUIRE(run_train(ws.config("max_steps: 6\nsave_steps: 2\noverwrite_output_dir: false\n")).exit_code == 0);
  const std::string two = ws.out("step_000002"), four = ws.out("step_000004"), six = ws.out("step_000006");
  const std::string model = read_file(four + "/model.bin"), metrics = read_file(ws.out("metrics.jsonl"));
  Run r = run_train("--resume " + two + " --max_steps 5");
  CHECK(r.exit_code == 2);
  CHECK(one_line_error(r));
  CHECK_MESSAGE(contains(error_text(r), "output_dir: " + (ws.dir / "out").string() + " holds 2 checkpoint(s) of this run after " + two +
                                            ", newest " + six + "; going on here would mix two continuations"),
                error_text(r));
  CHECK(read_file(four + "/model.bin") == model);
  CHECK(read_file(ws.out("metrics.jsonl")) == metrics);
  // Said in YAML with overwrite_output_dir (and another rate), the first checkpoint of the new
  // continuation (step 4) replaces the old one and step 6 goes.
  Run over = run_train(ws.config("max_steps: 5\nsave_steps: 2\nlearning_rate: 0.001\nresume_from_checkpoint: " + two + "\n"));
  REQUIRE_MESSAGE(over.exit_code == 0, over.output);
  CHECK(contains(over.output, "overwrite_output_dir: removed 1 checkpoint(s) of this run after " + two));
  CHECK(read_file(four + "/model.bin") != model);
  CHECK(!fs::exists(six));
  CHECK(fs::exists(ws.out("step_000005")));
}

// HF's save_only_model: the periodic checkpoints hold no optimizer state (optimizer.bin far smaller
// than with it), and a resume from one is refused in one line, nothing written; a stop signal's
// checkpoint keeps its state, so it stays resumable.
TEST_CASE("save_only_model: checkpoints without optimizer state; a resume from one is refused in one line") {
  Workspace ws("save_only_model");
  REQUIRE(run_train(ws.config("max_steps: 2\nsave_steps: 2\n")).exit_code == 0);
  const auto full = fs::file_size(ws.out("step_000002/optimizer.bin"));
  REQUIRE(run_train(ws.config("max_steps: 2\nsave_steps: 2\nsave_only_model: true\noverwrite_output_dir: true\n"))
              .exit_code == 0);
  const auto only_model = fs::file_size(ws.out("step_000002/optimizer.bin"));
  CHECK(only_model * 10 < full);
  Run r = run_train(ws.config("max_steps: 4\nresume_from_checkpoint: " + ws.out("step_000002") + "\n"));
  CHECK(r.exit_code == 2);
  CHECK(one_line_error(r));
  CHECK_MESSAGE(contains(r.output, ws.out("step_000002") + ": saved with save_only_model: true, so it holds no "
                                   "optimizer state to resume from"),
                r.output);
  CHECK(!fs::exists(ws.out("step_000004")));
}

TEST_CASE("metrics.jsonl: a non-finite loss or norm is null, so every line stays JSON and survives a resume") {
  Workspace ws("metrics_nan");
  const std::string path = ws.out("metrics.jsonl");
  fs::create_directories(ws.out());
  const auto no_warning = [](const std::string& why) { FAIL(why); };
  {
    MetricsLog log(path, std::nullopt, std::nullopt, no_warning);
    log.train(1, 0.5, std::nanf(""), 1e-3, INFINITY, 10.0);
    log.eval(1, -INFINITY);
  }
  { MetricsLog reopened(path, 1, std::nullopt, no_warning); }  // a resume at step 1 keeps both lines
  std::istringstream lines(read_file(path));
  std::string train, eval;
  REQUIRE(std::getline(lines, train));
  REQUIRE(std::getline(lines, eval));
  CHECK(nlohmann::json::parse(train)["loss"].is_null());
  CHECK(nlohmann::json::parse(train)["grad_norm"].is_null());
  CHECK(nlohmann::json::parse(train)["lr"] == 1e-3);
  CHECK(nlohmann::json::parse(eval)["eval_loss"].is_null());
}

TEST_CASE("metrics.jsonl travels in each checkpoint: a resume into another output_dir keeps the whole curve") {
  Workspace ws("metrics_history");
  const std::string straight = ws.out("straight"), moved = ws.out("moved");
  const std::string keys = "save_steps: 2\neval_steps: 2\noverwrite_output_dir: true\n";
  REQUIRE(run_train(ws.config(keys + "max_steps: 4\noutput_dir: " + straight + "\n")).exit_code == 0);
  const std::string whole = read_file(straight + "/metrics.jsonl");
  // HF's trainer_state.json carries log_history; here each checkpoint seals the log up to its step.
  const std::string two = straight + "/step_000002";
  const std::string carried = read_file(two + "/metrics.jsonl");
  CHECK(nlohmann::json::parse(read_file(two + "/manifest.json"))["files"].contains("metrics.jsonl"));
  CHECK(whole.rfind(carried, 0) == 0);               // the log's first lines, those up to step 2
  CHECK(contains(carried, "{\"step\": 2, \"eval_loss\": "));  // the evaluation before the save
  CHECK(!contains(carried, "{\"step\": 3,"));
  Run r = run_train("--resume " + two + " --output_dir " + moved);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  std::vector<std::string> a = train_records(straight + "/metrics.jsonl"), b = train_records(moved + "/metrics.jsonl");
  REQUIRE(a.size() == 4);
  CHECK(a == b);
  const std::string continued = read_file(moved + "/metrics.jsonl");  // the evaluations too
  CHECK(std::count(continued.begin(), continued.end(), '\n') == std::count(whole.begin(), whole.end(), '\n'));

  // A log whose seal no longer matches is refused by name, as the checkpoint's other files.
  write_file(two + "/metrics.jsonl", carried + "{\"step\": 1}\n");
  r = run_train("--resume " + two + " --output_dir " + ws.out("third"));
  CHECK(r.exit_code == 2);
  CHECK(contains(error_text(r), two + "/metrics.jsonl: " + std::to_string(carried.size() + 12) +
                                    " bytes, but manifest.json records " + std::to_string(carried.size())));

  // A new run over an earlier one's log (its checkpoints replaced) starts the log afresh.
  r = run_train(ws.config(keys + "max_steps: 2\noutput_dir: " + straight + "\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(train_records(straight + "/metrics.jsonl").size() == 2);
  const std::string fresh = read_file(straight + "/metrics.jsonl");
  CHECK(fresh.find("{\"step\": 0, \"eval_loss\"") == fresh.rfind("{\"step\": 0, \"eval_loss\""));

  // A checkpoint from before the first record carries an empty log: resumed into a directory that
  // holds another run's log, the log starts from that empty one, not from the file there.
  const std::string quiet = ws.out("quiet");
  REQUIRE(run_train(ws.config("save_steps: 1\nval_set_size: 0\nlogging_steps: 10\nmax_steps: 3\noutput_dir: " + quiet +
                              "\n")).exit_code == 0);
  CHECK(read_file(quiet + "/step_000001/metrics.jsonl").empty());
  r = run_train("--resume " + quiet + "/step_000001 --output_dir " + straight);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const std::vector<std::string> resumed = train_records(straight + "/metrics.jsonl");
  REQUIRE(resumed.size() == 1);
  CHECK(resumed == train_records(quiet + "/metrics.jsonl"));  // step 3's line, the run's only one
  CHECK(read_file(straight + "/metrics.jsonl").find("eval_loss") == std::string::npos);
}

TEST_CASE("a second run on the same output_dir is refused at once by the first one's lock") {
  Workspace ws("lock");
  const std::string cfg = ws.config("max_steps: 100000\n");
  const pid_t first = spawn_train({cfg}, (ws.dir / "first.log").string());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (train_records(ws.out("metrics.jsonl")).empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  Run second = run_train(cfg);
  kill(first, SIGTERM);
  int status = 0;
  waitpid(first, &status, 0);
  CHECK(second.exit_code == 2);
  CHECK(one_line_error(second));
  CHECK(error_text(second).find("output_dir: " + (ws.dir / "out").string() +
                                " is in use by another llm_train run") != std::string::npos);
  Run after = run_train(ws.config("max_steps: 1\n"));  // the lock goes with the process
  CHECK_MESSAGE(after.exit_code == 0, after.output);
}

TEST_CASE("a model too large for this machine's memory is refused before it is allocated") {
  Workspace ws("memory");
  // Llama 3.1 405B's widths over 64 layers: terabytes of weights and AdamW state.
  Run r = run_train(ws.config() + " --device cpu --hidden_size 16384 --intermediate_size 53248"
                                  " --num_hidden_layers 64 --num_attention_heads 128 --num_key_value_heads 8");
  CHECK(r.exit_code == 2);
  CHECK(one_line_error(r));
  CHECK(error_text(r).find("at its peak (largest: optimizer state") != std::string::npos);
  CHECK(error_text(r).find(" GiB available; lower hidden_size, intermediate_size, num_hidden_layers or vocab_size") !=
        std::string::npos);
}

TEST_CASE("the memory check asks the device: a run larger than what it reports is refused, naming both") {
  Workspace ws("device_memory");
  // The device's own answer (MemAvailable on the CPU) is printed beside the plan.
  Run fits = run_train(ws.config("max_steps: 1\n") + " --device cpu");
  REQUIRE_MESSAGE(fits.exit_code == 0, fits.output);
  CHECK(fits.output.find(" GiB available on cpu: largest ") != std::string::npos);
  // The test hook stands in for the device's answer: 0.5 MiB is less than this small model needs.
  const std::string refused = (ws.dir / "refused").string();
  Run r = run_train(ws.config("max_steps: 1\n") + " --device cpu --output_dir " + refused,
                    "LLM_TRAIN_AVAILABLE_MEMORY=524288 ");
  CHECK(r.exit_code == 2);
  CHECK(one_line_error(r));
  CHECK(error_text(r).find(" MiB at its peak (largest: ") != std::string::npos);
  CHECK(error_text(r).find("but cpu has 0.5 MiB available; lower hidden_size") != std::string::npos);
  // Refused before the data or the model: output_dir holds its lock file alone.
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(refused)) left.push_back(entry.path().filename().string());
  CHECK(left == std::vector<std::string>{".lock"});
  // A peak at evaluation names the evaluation and the key that sets its rows.
  Run eval = run_train(ws.config("max_steps: 1\nval_set_size: 0.1\neval_batch_size: 1048576\n") + " --device cpu --output_dir " +
                           (ws.dir / "eval").string(),
                       "LLM_TRAIN_AVAILABLE_MEMORY=1073741824 ");
  CHECK(eval.exit_code == 2);
  CHECK(one_line_error(eval));
  CHECK(contains(error_text(eval), " GiB at its peak (at evaluation (eval_batch_size rows in one forward); "));
  CHECK(contains(error_text(eval), "available; lower eval_batch_size (the rows an evaluation takes in one forward)"));
}

// HF's auto_find_batch_size, decided by the memory plan before anything is allocated: the first
// of 8, 7, 6, 5 ... (x 0.9, as accelerate retries) whose plan fits.
TEST_CASE("auto_find_batch_size: micro_batch_size shrinks to what the memory plan fits") {
  Workspace ws("auto_batch");
  const std::string config =
      ws.config("max_steps: 2\nsave_steps: 1\nmicro_batch_size: 8\nauto_find_batch_size: true\ndevice: cpu\n");
  const auto memory_for = [&](int64_t micro_batch_size) {
    TrainConfig c = parse_config(read_file(config), config);
    c.micro_batch_size = micro_batch_size;
    const double peak = plan_memory(memory_plan_input(c, 1, false, true)).peak_bytes;
    return "LLM_TRAIN_AVAILABLE_MEMORY=" + std::to_string(static_cast<uint64_t>(peak)) + " ";
  };
  const std::string available = memory_for(5);
  const Run r = run_train(config, available);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("auto_find_batch_size: micro_batch_size 8 does not fit the memory plan on cpu; 5 does") !=
        std::string::npos);
  CHECK(r.output.find("batch: 5 micro x 2 accumulation") != std::string::npos);
  // A resume where less memory is free fits it again (as HF's, from the size its state saved).
  const Run resumed = run_train("--resume " + ws.out("step_000001"), memory_for(4));
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  CHECK(contains(resumed.output, "warning: " + ws.out("step_000001") + ": micro_batch_size 4 where the checkpoint "
                                 "trained with 5 (auto_find_batch_size fits it to the memory here): the run goes on "
                                 "from step 1 at another row, not as the saved run would\n"));
  // Without it, the same memory refuses micro_batch_size 8 in one line.
  const Run refused = run_train(ws.config("max_steps: 1\nmicro_batch_size: 8\ndevice: cpu\n"), available);
  CHECK(refused.exit_code == 2);
}
