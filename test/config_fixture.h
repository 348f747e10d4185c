// Shared by test_config and test_config_table: a scratch directory with a dataset file, and
// parse / error helpers over a config that names it (so the keys a test adds start on line 3).
#pragma once
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "engine/user_error.h"
#include "train/config.h"

namespace llm::config_test {

namespace fs = std::filesystem;
using Overrides = std::map<std::string, std::string>;

// A scratch directory with one small dataset file; removed when the test binary exits.
struct Scratch {
  fs::path dir;
  std::string data;  // an existing dataset file, absolute
  Scratch() {
    dir = fs::temp_directory_path() / ("llm_test_config_" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "sub");
    data = write("data.txt", "hello\n");
  }
  ~Scratch() { fs::remove_all(dir); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  }
};
inline const Scratch& scratch() {
  static Scratch s;
  return s;
}

// Two lines naming the dataset, so the keys a test adds start on line 3.
inline std::string base() { return "datasets:\n  - path: " + scratch().data + "\n"; }

inline TrainConfig parse(const std::string& extra, const Overrides& overrides = {}) {
  return parse_config(base() + extra, "cfg.yaml", overrides);
}

// The UserError message of parsing `yaml` (checked to be one line), or "(no error)".
inline std::string error_of(const std::string& yaml, const Overrides& overrides = {}) {
  try {
    parse_config(yaml, "cfg.yaml", overrides);
  } catch (const UserError& e) {
    std::string message = e.what();
    CHECK(message.find('\n') == std::string::npos);
    return message;
  }
  return "(no error)";
}
inline std::string error_with(const std::string& extra, const Overrides& overrides = {}) {
  return error_of(base() + extra, overrides);
}
inline bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}


}  // namespace llm::config_test
