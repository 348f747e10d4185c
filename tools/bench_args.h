// Tiny `--key value` parser shared by llm_bench's subcommands; unknown keys are an error.
#pragma once
#include <map>
#include <stdexcept>
#include <string>

namespace llm {

class BenchArgs {
 public:
  BenchArgs(int argc, char** argv, int first, std::map<std::string, std::string> defaults)
      : values_(std::move(defaults)) {
    for (int i = first; i < argc; i++) {
      std::string key = argv[i];
      if (key.rfind("--", 0) != 0 || i + 1 >= argc)
        throw std::invalid_argument("expected --key value, got '" + key + "'");
      key = key.substr(2);
      if (!values_.count(key)) throw std::invalid_argument("unknown option --" + key);
      values_[key] = argv[++i];
    }
  }
  const std::string& str(const std::string& key) const { return values_.at(key); }
  long num(const std::string& key) const {
    try {
      return std::stol(values_.at(key));
    } catch (const std::exception&) {
      throw std::invalid_argument("--" + key + " expects an integer, got '" + values_.at(key) + "'");
    }
  }

 private:
  std::map<std::string, std::string> values_;
};

}  // namespace llm
