// Crash consistency: llm_train killed (SIGKILL, no chance to clean up) at seeded moments while it
// writes checkpoints, then resumed by auto_resume_from_checkpoints until it finishes. No kill may
// leave a checkpoint that loads half written, and the finished run must equal one that was never
// interrupted, bit for bit. And the stop signals that are not a step's clean stop (test_train has
// that one): SIGTERM during start-up, during an evaluation, and a second signal.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

// defines: list_checkpoints, checkpoint_step, verify_checkpoint
#include "io/checkpoint.h"
// defines: Workspace, spawn_train, run_train, train_records, check_same_model
#include "test/train_fixture.h"

using namespace llm;
using namespace llm::testing;

namespace {

// The step of the newest checkpoint being written (a step_N.tmp directory) or written (step_N).
struct Progress {
  int64_t writing = -1, written = -1;
};

Progress progress(const std::string& output_dir) {
  Progress p;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(output_dir, ec)) {
    std::string name = entry.path().filename().string();
    const bool tmp = name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0;
    if (tmp) name.resize(name.size() - 4);
    if (std::optional<int64_t> step = checkpoint_step(name)) {
      int64_t& slot = tmp ? p.writing : p.written;
      slot = std::max(slot, *step);
    }
  }
  return p;
}

// metrics.jsonl's records without their timing (tokens_per_s), evaluations among them.
std::vector<std::string> records(const std::string& metrics_path) {
  std::vector<std::string> lines;
  std::ifstream in(metrics_path);
  for (std::string line; std::getline(in, line);) lines.push_back(line.substr(0, line.find(", \"tokens_per_s\"")));
  return lines;
}

}  // namespace

TEST_CASE("SIGKILL during checkpoint writes: never a half checkpoint; resume finishes as if uninterrupted") {
  constexpr int64_t kSteps = 12;
  constexpr int kKills = 5;
  Workspace ws("crash"), ref("crash_ref");
  const std::string extra = "max_steps: " + std::to_string(kSteps) +
                            "\nsave_steps: 1\nauto_resume_from_checkpoints: true\n";
  const std::string cfg = ws.config(extra);
  std::mt19937 rng(20240611);
  int inside_a_write = 0;
  for (int kill_number = 0; kill_number < kKills; kill_number++) {
    // Each kill lands while a later checkpoint is written: steps 1-2, 3-4, ..., 9-10.
    const int64_t target = 2 * kill_number + 1 + int64_t(rng() % 2);
    const auto delay = std::chrono::microseconds(rng() % 3000);
    CAPTURE(target);
    const pid_t pid = spawn_train({cfg}, (ws.dir / "run.log").string());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      const Progress p = progress(ws.out());
      if (p.writing >= target) {  // inside save_checkpoint: at a random moment of its write
        inside_a_write++;
        std::this_thread::sleep_for(delay);
        break;
      }
      if (p.written >= target) break;  // the write went by between two looks: kill just after it
      if (std::chrono::steady_clock::now() > deadline) FAIL("no checkpoint of step " << target << " within 60 s");
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status));
    // Whatever the moment, each checkpoint directory is whole: a write in flight is still *.tmp.
    for (const std::string& dir : list_checkpoints(ws.out())) {
      CAPTURE(dir);
      CHECK_NOTHROW(verify_checkpoint(dir));
    }
  }
  MESSAGE(inside_a_write << " of " << kKills << " kills landed inside a checkpoint write");

  const Run finished = run_train(cfg);
  REQUIRE_MESSAGE(finished.exit_code == 0, finished.output);
  CHECK(finished.output.find("resumed from ") != std::string::npos);
  const Run straight = run_train(ref.config(extra));
  REQUIRE_MESSAGE(straight.exit_code == 0, straight.output);
  CHECK(train_records(ws.out("metrics.jsonl")) == train_records(ref.out("metrics.jsonl")));
  check_same_model(ws.out(checkpoint_dir_name(kSteps)), ref.out(checkpoint_dir_name(kSteps)));
}

// A kill after the final checkpoint is in place, before `latest` names it (or inside the pruning
// after it): the resume at that step trains nothing and ends as the uninterrupted run ends.
TEST_CASE("resumed at its final checkpoint, a run settles what the kill left: latest, *.tmp, rotation") {
  Workspace ws("crash_final");
  const std::string cfg = ws.config("max_steps: 6\nsave_steps: 2\nsave_total_limit: 2\nval_set_size: 0\n"
                                    "auto_resume_from_checkpoints: true\n");
  Run first = run_train(cfg);
  REQUIRE_MESSAGE(first.exit_code == 0, first.output);
  // What the kill leaves: `latest` still on step 4, its replacement written, step 2 half pruned.
  write_file(ws.out("latest"), "step_000004\n");
  write_file(ws.out("latest.tmp"), "step_000006\n");
  fs::create_directories(ws.out("step_000002.tmp"));
  Run resumed = run_train(cfg);
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  CHECK(contains(resumed.output, "resumed from "));
  CHECK(read_file(ws.out("latest")) == "step_000006\n");
  CHECK(!fs::exists(ws.out("latest.tmp")));
  CHECK(!fs::exists(ws.out("step_000002.tmp")));
  CHECK(list_checkpoints(ws.out()) == std::vector<std::string>{ws.out("step_000004"), ws.out("step_000006")});
}

TEST_CASE("SIGTERM during start-up stops at the next stop point: one line, exit 143, nothing half written") {
  Workspace ws("startup_signal");
  // 200,000 short documents: tokenising them is start-up's longest phase, and a signal sent once it
  // has begun lands there or, on a fast machine, at a later stop point: the outcome is the same.
  std::string corpus;
  for (int i = 0; i < 200000; i++) corpus += "document " + std::to_string(i) + ": the quick brown fox jumps.\n";
  write_file((ws.dir / "corpus.txt").string(), corpus);
  const std::string log = (ws.dir / "run.log").string();
  const pid_t pid = spawn_train({ws.config("max_steps: 1\n")}, log);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (read_file(log).find("tokenizing 1 dataset(s)") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  const std::string output = read_file(log);
  REQUIRE_MESSAGE(WIFEXITED(status), output);
  CHECK(WEXITSTATUS(status) == 128 + SIGTERM);
  const auto stopped = output.find("stopped by SIGTERM during start-up (");
  REQUIRE_MESSAGE(stopped != std::string::npos, output);
  CHECK(output.find('\n', stopped) + 1 == output.size());  // one line, the last
  CHECK(output.find("error") == std::string::npos);
  // No checkpoint, no metrics, no temporary file left anywhere; the lock is free again.
  for (const auto& entry : fs::recursive_directory_iterator(ws.dir)) {
    const std::string name = entry.path().filename().string();
    CHECK_MESSAGE(name.find("tmp") == std::string::npos, name);
    CHECK_MESSAGE(name.rfind("step_", 0) != 0, name);
    CHECK_MESSAGE(name != "metrics.jsonl", name);
  }
  const int lock = open(ws.out(".lock").c_str(), O_RDWR);
  REQUIRE(lock >= 0);
  CHECK(flock(lock, LOCK_EX | LOCK_NB) == 0);
  close(lock);
}

// A long evaluation would outlast a scheduler's grace period: the signal ends it between two
// batches (LLM_TRAIN_SIGNAL_AT_EVAL raises it there), and the checkpoint is the step's as it stood
// before the evaluation, which its resume runs first.
TEST_CASE("SIGTERM during an evaluation: the step's checkpoint, whose resume evaluates first, as if uninterrupted") {
  Workspace ws("eval_signal"), ref("eval_signal_ref");
  const std::string cfg = "max_steps: 4\neval_steps: 2\nval_set_size: 0.3\neval_batch_size: 1\n";
  const Run stopped = run_train(ws.config(cfg), "LLM_TRAIN_SIGNAL_AT_EVAL=2:1 ");
  REQUIRE_MESSAGE(stopped.exit_code == 0, stopped.output);
  CHECK(contains(stopped.output, "stopped by SIGTERM during the evaluation at step 2: checkpoint written to " +
                                     ws.out("step_000002") + " (its evaluation runs first on resume)"));
  CHECK(list_checkpoints(ws.out()) == std::vector<std::string>{ws.out("step_000002")});
  CHECK(!contains(read_file(ws.out("metrics.jsonl")), "{\"step\": 2, \"eval_loss\""));
  const Run resumed = run_train("--resume " + ws.out("step_000002"));
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  CHECK(contains(resumed.output, "eval step 2 |"));
  const Run straight = run_train(ref.config(cfg));
  REQUIRE_MESSAGE(straight.exit_code == 0, straight.output);
  CHECK(records(ws.out("metrics.jsonl")) == records(ref.out("metrics.jsonl")));
  check_same_model(ws.out("step_000004"), ref.out("step_000004"));
  // At the start's evaluation nothing has trained: start-up's stop, nothing saved.
  Workspace start("eval_signal_start");
  const Run at_start = run_train(start.config(cfg), "LLM_TRAIN_SIGNAL_AT_EVAL=0:0 ");
  CHECK(at_start.exit_code == 128 + SIGTERM);
  CHECK(contains(at_start.output, "stopped by SIGTERM during start-up (the evaluation at the start), before the first "
                                  "step: no checkpoint written"));
  CHECK(list_checkpoints(start.out()).empty());
}

TEST_CASE("a second stop signal exits at once, with one line saying so") {
  Workspace ws("second_signal");
  const std::string log = (ws.dir / "run.log").string();
  const pid_t pid = spawn_train({ws.config("max_steps: 100000\n")}, log);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (train_records(ws.out("metrics.jsonl")).empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // Two different signals, so the kernel cannot merge them into one pending signal; both land
  // within microseconds, far inside the step that the first would end with a checkpoint.
  kill(pid, SIGINT);
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  const std::string output = read_file(log);
  REQUIRE_MESSAGE(WIFEXITED(status), output);
  CHECK((WEXITSTATUS(status) == 128 + SIGINT || WEXITSTATUS(status) == 128 + SIGTERM));
  const auto said = output.find("llm_train: a second stop signal: exiting at once");
  REQUIRE_MESSAGE(said != std::string::npos, output);
  CHECK(output.find('\n', said) + 1 == output.size());  // the last line
  CHECK(output.find("stopped by signal") == std::string::npos);
  Run after = run_train(ws.config("max_steps: 1\n"));  // the lock went with the process
  CHECK_MESSAGE(after.exit_code == 0, after.output);
}
