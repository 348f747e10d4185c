// Checkpoint directories (io/checkpoint.h): save, list, latest, prune, auto-resume fallback,
// survival of a SIGKILL mid-save, and the manifest that seals them.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "engine/user_error.h"
#include "io/checkpoint.h"
#include "io/tensor_file.h"
#include "test/tensor_file_edits.h"
#include "test/test_files.h"

using namespace llm;
using namespace llm::testing;
namespace fs = std::filesystem;

namespace {

constexpr const char* kRunId = "0123456789abcdef";

CheckpointContents small_contents(float value, const std::string& run_id = kRunId) {
  CheckpointContents c;
  c.run_id = run_id;
  c.config_yaml = "base_model: tiny\nlearning_rate: " + std::to_string(value) + "\n";
  c.model.add("model.embed_tokens.weight", Tensor::full({4, 3}, value, DType::f32));
  c.optimizer.add("exp_avg.model.embed_tokens.weight", Tensor::full({4, 3}, -value, DType::f32));
  c.trainer.add("rng_state", Tensor::from_ints({1, 2, 3}, {3}));
  c.trainer.metadata["value"] = std::to_string(value);
  return c;
}

std::vector<std::string> names_of(const std::vector<std::string>& dirs) {
  std::vector<std::string> names;
  for (const std::string& d : dirs) names.push_back(fs::path(d).filename().string());
  return names;
}

}  // namespace

TEST_CASE("save, list, latest and load of checkpoint directories") {
  TempDir tmp;
  std::string out = tmp.file("out");
  CHECK(list_checkpoints(out).empty());
  CHECK(checkpoint_dir_name(7) == "step_000007");
  CHECK(checkpoint_dir_name(12345678) == "step_12345678");
  CHECK(checkpoint_step(out + "/step_000042/") == 42);
  CHECK(checkpoint_step(out + "/step_000042.tmp") == std::nullopt);
  CHECK(checkpoint_step(out + "/latest") == std::nullopt);

  std::string dir = save_checkpoint(out, 20, small_contents(2.0f));
  CHECK(dir == out + "/step_000020");
  save_checkpoint(out, 3, small_contents(0.3f));
  save_checkpoint(out, 100, small_contents(1.0f));
  CHECK(names_of(list_checkpoints(out)) ==
        std::vector<std::string>{"step_000003", "step_000020", "step_000100"});
  CHECK(read_latest_pointer(out) == "step_000100");

  CheckpointContents c = load_checkpoint(dir);
  CHECK(c.config_yaml == small_contents(2.0f).config_yaml);
  CHECK(c.model.require("model.embed_tokens.weight", {4, 3}, DType::f32).to_floats()[5] == 2.0f);
  CHECK(c.optimizer.tensors.at(0).tensor.to_floats()[0] == -2.0f);
  CHECK(c.trainer.require_metadata("value") == std::to_string(2.0f));
  CHECK(c.model.path == dir + "/model.bin");

  SUBCASE("saving a step again replaces it whole") {
    save_checkpoint(out, 20, small_contents(5.0f));
    CHECK(load_checkpoint(dir).model.tensors[0].tensor.to_floats()[0] == 5.0f);
    CHECK(names_of(list_checkpoints(out)).size() == 3);
    CHECK(read_latest_pointer(out) == "step_000020");
    for (const auto& entry : fs::directory_iterator(out))
      CHECK(entry.path().extension() != ".tmp");
  }
  SUBCASE("a missing file is named") {
    fs::remove(dir + "/optimizer.bin");
    CHECK(error_of([&] { load_checkpoint(dir); }) ==
          dir + "/optimizer.bin: missing (incomplete checkpoint)");
    fs::create_directory(dir + "/optimizer.bin");
    CHECK(error_of([&] { load_checkpoint(dir); }) ==
          dir + "/optimizer.bin: expected a file of the checkpoint, got a directory");
    CHECK(error_of([&] { load_checkpoint(out + "/step_000999"); }) ==
          out + "/step_000999: not a checkpoint directory (no such directory)");
    CHECK(error_of([&] { load_checkpoint(dir + "/model.bin"); }) ==
          dir + "/model.bin: not a checkpoint directory (a file)");
  }
  SUBCASE("the run's output_dir, or another directory, named for a checkpoint") {
    CHECK(error_of([&] { load_checkpoint(out); }) ==
          out + ": expected a checkpoint directory, got an output_dir holding 3 checkpoint(s): name one (the newest: " +
              out + "/step_000100), or set auto_resume_from_checkpoints: true in the config to take the newest valid one");
    fs::create_directories(out + "/empty");
    CHECK(error_of([&] { load_checkpoint(out + "/empty"); }) ==
          out + "/empty: expected a checkpoint directory (step_NNNNNN, holding manifest.json, config.yaml and "
                "model.bin), got a directory with none of them");
  }
}

TEST_CASE("leftover .tmp directories are never listed and are removed by the next save") {
  TempDir tmp;
  std::string out = tmp.file("out");
  save_checkpoint(out, 1, small_contents(1.0f));
  fs::create_directories(out + "/step_000002.tmp");
  std::ofstream(out + "/step_000002.tmp/model.bin") << "partial";
  CHECK(names_of(list_checkpoints(out)) == std::vector<std::string>{"step_000001"});
  save_checkpoint(out, 3, small_contents(3.0f));
  CHECK_FALSE(fs::exists(out + "/step_000002.tmp"));
  CHECK(names_of(list_checkpoints(out)) == std::vector<std::string>{"step_000001", "step_000003"});
}

// HF's rotation: the best counts toward the limit (it is moved next to last), a limit of 1 keeps
// the newest beside it, and at the end of training a limit of 1 keeps the best alone.
TEST_CASE("prune keeps save_total_limit checkpoints as HF's Trainer rotates them, and latest's target") {
  TempDir tmp;
  std::string out = tmp.file("out");
  for (int step = 1; step <= 5; step++) save_checkpoint(out, step, small_contents(float(step)));

  SUBCASE("limit only") {
    prune_checkpoints(out, 2, std::nullopt);
    CHECK(names_of(list_checkpoints(out)) ==
          std::vector<std::string>{"step_000004", "step_000005"});
  }
  SUBCASE("the best step within the limit") {
    prune_checkpoints(out, 2, 1);
    CHECK(names_of(list_checkpoints(out)) == std::vector<std::string>{"step_000001", "step_000005"});
    CHECK(load_checkpoint(out + "/step_000001").model.tensors[0].tensor.to_floats()[0] == 1.0f);
  }
  SUBCASE("the best step newest: a limit of 1 keeps it alone") {
    prune_checkpoints(out, 1, 5);
    CHECK(names_of(list_checkpoints(out)) == std::vector<std::string>{"step_000005"});
  }
  SUBCASE("the best step already next to last: a limit of 1 keeps it beside the newest") {
    prune_checkpoints(out, 1, 4);
    CHECK(names_of(list_checkpoints(out)) == std::vector<std::string>{"step_000004", "step_000005"});
  }
  SUBCASE("a limit of 1 keeps the newest beside the best, and the best alone at the end") {
    prune_checkpoints(out, 1, 2);
    CHECK(names_of(list_checkpoints(out)) == std::vector<std::string>{"step_000002", "step_000005"});
    prune_checkpoints(out, 1, 2, CheckpointsPruned::at_the_end);
    CHECK(names_of(list_checkpoints(out)) == std::vector<std::string>{"step_000002"});
    CHECK(*read_latest_pointer(out) == "step_000002");
  }
  SUBCASE("a limit of 0 keeps everything") {
    prune_checkpoints(out, 0, std::nullopt);
    CHECK(list_checkpoints(out).size() == 5);
  }
  SUBCASE("the checkpoint latest points at survives even when older than the newest") {
    save_checkpoint(out, 2, small_contents(2.5f));  // resumed from an earlier step
    prune_checkpoints(out, 1, std::nullopt);
    CHECK(names_of(list_checkpoints(out)) ==
          std::vector<std::string>{"step_000002", "step_000005"});
  }
  for (const auto& entry : fs::directory_iterator(out)) CHECK(entry.path().extension() != ".tmp");
}

TEST_CASE("auto-resume skips damaged checkpoints with a warning and takes the previous one") {
  TempDir tmp;
  std::string out = tmp.file("out");
  std::vector<std::string> warnings;
  auto warn = [&](const std::string& w) { warnings.push_back(w); };
  CHECK(find_latest_valid_checkpoint(out, warn) == std::nullopt);
  for (int step = 1; step <= 3; step++) save_checkpoint(out, step, small_contents(float(step)));
  CHECK(find_latest_valid_checkpoint(out, warn) == out + "/step_000003");
  CHECK(warnings.empty());

  std::string opt = out + "/step_000003/optimizer.bin";
  flip_byte(opt, data_offset(opt, "exp_avg.model.embed_tokens.weight"));
  fs::remove(out + "/step_000002/trainer.bin");
  CHECK(find_latest_valid_checkpoint(out, warn) == out + "/step_000001");
  CHECK(warnings == std::vector<std::string>{
                        opt + ": tensor exp_avg.model.embed_tokens.weight: checksum mismatch "
                              "(file corrupt); skipping " + out + "/step_000003",
                        out + "/step_000002/trainer.bin: missing (incomplete checkpoint); "
                              "skipping " + out + "/step_000002"});
}

TEST_CASE("a process killed with SIGKILL mid-save leaves the previous checkpoint loadable") {
  TempDir tmp;
  std::string out = tmp.file("out");
  save_checkpoint(out, 1, small_contents(1.0f));
  CheckpointContents big = small_contents(2.0f);
  for (int i = 0; i < 8; i++)  // 64 MB: tens of milliseconds to checksum, write and fsync
    big.model.add("big." + std::to_string(i), Tensor::full({2 << 20}, float(i), DType::f32));

  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    try {
      save_checkpoint(out, 2, big);
    } catch (...) {
    }
    _exit(0);
  }
  // Kill the child once model.bin has data on its way to disk, well before the rename.
  std::string partial = out + "/step_000002.tmp/model.bin";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::error_code ec;
  while (fs::file_size(partial, ec) == 0 || ec) {
    if (std::chrono::steady_clock::now() > deadline) break;
    usleep(100);
  }
  kill(pid, SIGKILL);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFSIGNALED(status));  // the child was interrupted, not finished
  CHECK(WTERMSIG(status) == SIGKILL);
  CHECK(fs::exists(out + "/step_000002.tmp"));

  CHECK(names_of(list_checkpoints(out)) == std::vector<std::string>{"step_000001"});
  CHECK(read_latest_pointer(out) == "step_000001");
  std::vector<std::string> warnings;
  CHECK(find_latest_valid_checkpoint(out, [&](const std::string& w) { warnings.push_back(w); }) ==
        out + "/step_000001");
  CHECK(warnings.empty());
  CHECK(load_checkpoint(out + "/step_000001").model.tensors[0].tensor.to_floats()[0] == 1.0f);

  save_checkpoint(out, 3, small_contents(3.0f));
  CHECK_FALSE(fs::exists(out + "/step_000002.tmp"));
  CHECK(names_of(list_checkpoints(out)) == std::vector<std::string>{"step_000001", "step_000003"});
}

TEST_CASE("a manifest seals a checkpoint: a foreign, edited or cut file is refused by name") {
  TempDir tmp;
  std::string out = tmp.file("out");
  std::string one = save_checkpoint(out, 1, small_contents(1.0f));
  std::string two = save_checkpoint(out, 2, small_contents(2.0f));
  const std::string manifest = one + "/manifest.json";
  nlohmann::json m = nlohmann::json::parse(read_file(manifest));
  CHECK(m["format"] == 1);
  CHECK(m["step"] == 1);
  CHECK(m["run_id"] == kRunId);
  CHECK(m["files"].size() == 4);
  CHECK(m["files"]["config.yaml"]["bytes"] == fs::file_size(one + "/config.yaml"));
  CHECK(load_checkpoint(one).run_id == kRunId);
  CHECK(load_checkpoint(one).sealed);
  CHECK(load_checkpoint(one).trainer.require_metadata("step") == "1");
  CHECK(load_checkpoint(one).model.require_metadata("run_id") == kRunId);
  // Both readers refuse with the same one line, which names the file.
  auto refusal = [](const std::string& dir) {
    std::string load = error_of([&] { load_checkpoint(dir); });
    CHECK(error_of([&] { verify_checkpoint(dir); }) == load);
    CHECK(load.find('\n') == std::string::npos);
    return load;
  };

  SUBCASE("trainer.bin from another step") {
    fs::copy_file(two + "/trainer.bin", one + "/trainer.bin", fs::copy_options::overwrite_existing);
    CHECK(refusal(one) == one + "/trainer.bin: written at step 2, but manifest.json seals step 1 "
                                "(a file from another checkpoint)");
  }
  SUBCASE("model.bin from another run at the same step") {
    save_checkpoint(tmp.file("other"), 1, small_contents(1.0f, "fedcba9876543210"));
    fs::copy_file(tmp.file("other") + "/step_000001/model.bin", one + "/model.bin",
                  fs::copy_options::overwrite_existing);
    CHECK(refusal(one) == one + "/model.bin: written by run fedcba9876543210, but manifest.json "
                                "seals run 0123456789abcdef (a file from another run)");
  }
  SUBCASE("an edited config.yaml, and one cut short") {
    std::string config = read_file(one + "/config.yaml");
    config[config.find("learning_rate: 1") + 15] = '9';  // same length, other value
    write_file(one + "/config.yaml", config);
    CHECK(contains(refusal(one), one + "/config.yaml: checksum "));
    CHECK(contains(refusal(one), ", but manifest.json records "));
    CHECK(error_of([&] { read_checkpoint_config(one); }) == refusal(one));
    fs::resize_file(one + "/config.yaml", 5);
    CHECK(refusal(one) == one + "/config.yaml: 5 bytes, but manifest.json records " +
                              std::to_string(config.size()) +
                              " (truncated, or changed after the checkpoint was sealed)");
  }
  SUBCASE("the run's metrics log, when carried, is sealed as config.yaml is") {
    CheckpointContents c = small_contents(3.0f);
    c.metrics_log = "{\"step\": 3, \"eval_loss\": 1.5}\n";
    const std::string three = save_checkpoint(out, 3, c);
    CHECK(load_checkpoint(three).metrics_log == c.metrics_log);
    CHECK(!load_checkpoint(one).metrics_log);
    write_file(three + "/metrics.jsonl", "{\"step\": 3, \"eval_loss\": 9.5}\n");
    CHECK(contains(refusal(three), three + "/metrics.jsonl: checksum "));
  }
  SUBCASE("a manifest from another step") {
    fs::copy_file(two + "/manifest.json", manifest, fs::copy_options::overwrite_existing);
    CHECK(refusal(one) == manifest + ": seals step 2, but the directory is step_000001 "
                                     "(a manifest from another checkpoint)");
  }
  SUBCASE("a damaged manifest") {
    write_file(manifest, "{\"format\": 1, \"step\": ");
    CHECK(refusal(one) == manifest + ": expected a checkpoint manifest, got invalid JSON (byte 23)");
  }
  SUBCASE("without a manifest (written before manifests): loads, reported unsealed") {
    fs::remove(manifest);
    CHECK_FALSE(verify_checkpoint(one));
    CheckpointContents c = load_checkpoint(one);
    CHECK_FALSE(c.sealed);
    CHECK(c.run_id.empty());
    CHECK(c.model.require("model.embed_tokens.weight", {4, 3}, DType::f32).to_floats()[0] == 1.0f);
  }
  SUBCASE("auto-resume falls back past a checkpoint whose files do not belong together") {
    fs::copy_file(one + "/trainer.bin", two + "/trainer.bin", fs::copy_options::overwrite_existing);
    std::vector<std::string> warnings;
    CHECK(find_latest_valid_checkpoint(out, [&](const std::string& w) { warnings.push_back(w); }) == one);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0] == two + "/trainer.bin: written at step 1, but manifest.json seals step 2 "
                               "(a file from another checkpoint); skipping " + two);
  }
}
