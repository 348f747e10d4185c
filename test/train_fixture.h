// Process-level training tests: a scratch workspace with a small corpus and config, running the
// llm_train binary, and reading back what it wrote. Used by test_train and test_distributed.
#pragma once
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "io/tensor_file.h"
#include "test/mpirun.h"
#include "test/test_files.h"

namespace llm::testing {

namespace fs = std::filesystem;

inline const std::string kTrainBin = LLM_TRAIN_BIN;

// A fresh directory with a small corpus and a config for a model far smaller than tiny. The LR
// schedule is constant after warmup so that runs with different max_steps share it (a resumed
// run with a new --max_steps recomputes a cosine schedule over its new total).
inline const std::string kSmallModel =
    "base_model: tiny\nhidden_size: 32\nintermediate_size: 64\nnum_hidden_layers: 2\n"
    "num_attention_heads: 4\nnum_key_value_heads: 2\n";

struct Workspace {
  fs::path dir;
  explicit Workspace(const std::string& name) {
    dir = fs::temp_directory_path() / ("llm_train_test_" + name + "_" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::string text;
    for (int i = 0; i < 400; i++)
      text += "line " + std::to_string(i % 37) + ": the quick brown fox jumps over the lazy dog.\n";
    write_file((dir / "corpus.txt").string(), text);
  }
  ~Workspace() { fs::remove_all(dir); }
  // The base_model and its shape of config() when it is given none (width 32, 2 layers).
  std::string model_yaml = kSmallModel;
  std::string config(const std::string& extra = "", const std::string& model = "") const {
    std::string path = (dir / "config.yaml").string();
    write_file(path, (model.empty() ? model_yaml : model) +
                     "datasets:\n  - path: " + (dir / "corpus.txt").string() + "\n    type: completion\n"
                     "dataset_prepared_path: " + (dir / "prepared").string() + "\n"
                     "output_dir: " + (dir / "out").string() + "\n"
                     "sequence_len: 32\nmicro_batch_size: 2\ngradient_accumulation_steps: 2\n"
                     "learning_rate: 0.003\nlr_scheduler: constant_with_warmup\nwarmup_steps: 2\nlogging_steps: 1\nseed: 7\n"
                     "val_set_size: 0.1\nsave_total_limit: 10\n"
                     // HF's one division by every rank's targets, so runs on any world size compare
                     // (test_distributed checks Axolotl's per-rank division on its own).
                     "average_tokens_across_devices: true\n"
                     // Tests run one workspace again and again; test_reliability checks the refusal.
                     "overwrite_output_dir: true\n" + extra);
    return path;
  }
  std::string out(const std::string& sub = "") const { return (dir / "out" / sub).string(); }
};

struct Run {
  int exit_code;
  std::string output;
};

// Runs `prefix llm_train args` (prefix: e.g. an mpirun command) and captures its output.
inline Run run_train(const std::string& args, const std::string& prefix = "") {
  std::string log = (fs::temp_directory_path() / ("llm_train_log_" + std::to_string(getpid()))).string();
  int status = std::system((prefix + kTrainBin + " " + args + " > " + log + " 2>&1").c_str());
  Run r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(log)};
  fs::remove(log);
  return r;
}

// Starts `llm_train args...` as a child process writing its output to `log`; returns its pid.
inline pid_t spawn_train(const std::vector<std::string>& args, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {  // the child becomes llm_train itself
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv{const_cast<char*>(kTrainBin.c_str())};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(kTrainBin.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

// The last "error: ..." of a run's output, through its end: one line when the error is one line.
inline std::string error_text(const Run& r) {
  auto at = r.output.rfind("error: ");
  return at == std::string::npos ? "" : r.output.substr(at);
}

// A run of `ws`'s config with `extra` keys fails with one line of error holding `message`.
inline void check_refused_run(const Workspace& ws, const std::string& extra, const std::string& message) {
  CAPTURE(extra);
  Run r = run_train(ws.config(extra));
  CHECK(r.exit_code != 0);
  const std::string error = error_text(r);
  CHECK_MESSAGE(error.find(message) != std::string::npos, error);
  CHECK(std::count(error.begin(), error.end(), '\n') <= 1);
}

// The train-loss lines of metrics.jsonl (their text holds every loss at %.9g).
inline std::vector<std::string> train_records(const std::string& metrics_path) {
  std::vector<std::string> lines;
  std::ifstream in(metrics_path);
  for (std::string line; std::getline(in, line);)
    if (line.find("\"loss\"") != std::string::npos) lines.push_back(line.substr(0, line.find(", \"tokens_per_s\"")));
  return lines;
}

inline void check_same_model(const std::string& ckpt_a, const std::string& ckpt_b) {
  TensorFile a = read_tensor_file(ckpt_a + "/model.bin"), b = read_tensor_file(ckpt_b + "/model.bin");
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); i++) {
    CAPTURE(a.tensors[i].name);
    const Tensor &x = a.tensors[i].tensor, &y = b.tensors[i].tensor;
    REQUIRE(x.nbytes() == y.nbytes());
    CHECK(std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()) == 0);
  }
}

// The number after `key` (a regex) in `text`.
inline double number_after(const std::string& text, const std::string& key) {
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_search(text, m, std::regex(key + "\\s*([0-9.eE+-]+)")), key);
  return std::stod(m[1]);
}

// Every loss of two metrics logs agrees within `rel` (fp32 sums in a different order).
inline void check_losses_close(const std::string& a_path, const std::string& b_path, double rel) {
  std::vector<std::string> a = train_records(a_path), b = train_records(b_path);
  REQUIRE(a.size() == b.size());
  REQUIRE(!a.empty());
  for (size_t i = 0; i < a.size(); i++) {
    CAPTURE(a[i]);
    CAPTURE(b[i]);
    double x = number_after(a[i], "\"loss\":"), y = number_after(b[i], "\"loss\":");
    CHECK(std::fabs(x - y) <= rel * std::fabs(x));
  }
}

// 2 x `half` steps straight (cfg sets max_steps 2 x half and save_steps half), then `half` steps
// and a resume for `half` more, every run under `launcher` (2 ranks by default, "" for one
// process); the losses and weights must be the same. Returns the straight run's output (and the
// resumed run's in `resumed_output`).
inline std::string check_resume_exact(const Workspace& straight, const Workspace& resumed, const std::string& cfg,
                                      std::string* resumed_output = nullptr, const std::string& launcher = mpirun(2),
                                      int half = 3) {
  const std::string half_dir = checkpoint_dir_name(half), end_dir = checkpoint_dir_name(2 * half);
  Run a = run_train(straight.config(cfg), launcher);
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  Run b1 = run_train(resumed.config(cfg) + " --max_steps " + std::to_string(half), launcher);
  REQUIRE_MESSAGE(b1.exit_code == 0, b1.output);
  Run b2 = run_train("--resume " + resumed.out(half_dir) + " --max_steps " + std::to_string(2 * half), launcher);
  REQUIRE_MESSAGE(b2.exit_code == 0, b2.output);
  CHECK(train_records(straight.out("metrics.jsonl")) == train_records(resumed.out("metrics.jsonl")));
  check_same_model(straight.out(end_dir), resumed.out(end_dir));
  if (resumed_output) *resumed_output = b2.output;
  return a.output;
}

}  // namespace llm::testing
