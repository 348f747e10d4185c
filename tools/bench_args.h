// Tiny `--key value` parser shared by llm_bench's subcommands (unknown keys are an error), and
// the model and attention options they share.
#pragma once
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

#include "model/attention_kind.h"
#include "model/llama_config.h"

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

// --preset, narrowed or widened by --layers N and --dim N (the MLP 3 x dim) when given (> 0).
inline LlamaConfig bench_model(const BenchArgs& args) {
  std::optional<LlamaConfig> preset = llama_preset(args.str("preset"));
  if (!preset) throw std::invalid_argument("--preset: unknown preset '" + args.str("preset") + "'");
  LlamaConfig c = *preset;
  if (args.num("layers") > 0) c.num_hidden_layers = args.num("layers");
  if (args.num("dim") > 0 && args.num("dim") != c.hidden_size) {
    c.hidden_size = args.num("dim");
    c.intermediate_size = 3 * c.hidden_size;
  }
  return c;
}

// The attention kind llm_bench's --attention names (AttentionInfo::bench_name).
inline AttentionKind attention_named(const std::string& name) {
  std::string names;
  for (const AttentionInfo& info : kAttentionKinds) {
    if (name == info.bench_name) return info.kind;
    names += (names.empty() ? "" : ", ") + std::string(info.bench_name);
  }
  throw std::invalid_argument("--attention expects one of " + names + ", got '" + name + "'");
}

}  // namespace llm
