// defines: load_config, parse_config (Axolotl-style YAML -> a validated TrainConfig)
#include "train/config.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>

#include "io/bpe_tokenizer.h"
#include "engine/user_error.h"
#include "model/hf_config.h"

namespace llm {
namespace {

namespace fs = std::filesystem;

// Where a value came from, for messages: "<file>:<line>: <key>", or "<file>: --<key>" for a
// command-line override (its text has no line in the file).
struct Where {
  std::string file, key;
  int line = 0;  // 1-based; 0: unknown
  bool cli = false;

  std::string str() const {
    return file + (line > 0 ? ":" + std::to_string(line) : "") + ": " + (cli ? "--" : "") + key;
  }
  // A value nested in this one (a list item or a map field), located by its own YAML mark.
  Where child(const std::string& sub, const YAML::Node& node) const {
    Where w = *this;
    w.key += sub;
    if (!cli && node.Mark().line >= 0) w.line = node.Mark().line + 1;
    return w;
  }
};

[[noreturn]] void fail(const Where& w, const std::string& expected, const std::string& got) {
  throw UserError(w.str() + ": expected " + expected + ", got " + got);
}

bool parse_int(const std::string& s, int64_t& out) {
  if (s.empty() || std::isspace(static_cast<unsigned char>(s[0]))) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  out = v;
  return true;
}

bool parse_double(const std::string& s, double& out) {
  if (s.empty() || std::isspace(static_cast<unsigned char>(s[0]))) return false;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || *end != '\0' || !std::isfinite(v)) return false;
  out = v;
  return true;
}

// What the user wrote, for the "got ..." half of a message.
std::string describe(const YAML::Node& n) {
  if (n.IsSequence()) return n.size() ? "a list" : "an empty list";
  if (n.IsMap()) return "a map";
  if (!n.IsScalar()) return "nothing";
  double ignored;
  return parse_double(n.Scalar(), ignored) ? n.Scalar() : "'" + n.Scalar() + "'";
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

constexpr double kInf = std::numeric_limits<double>::infinity();
struct Range {
  double lo;
  bool lo_open;
  double hi;
  bool hi_open;
  std::string text() const {
    if (hi == kInf) return std::string("a number ") + (lo_open ? "> " : ">= ") + num(lo);
    return std::string("a number in ") + (lo_open ? "(" : "[") + num(lo) + ", " + num(hi) +
           (hi_open ? ")" : "]");
  }
  bool contains(double v) const {
    return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  }
};
const Range kPositive{0, true, kInf, true}, kNonNegative{0, false, kInf, true};
const Range kBeta{0, false, 1, true}, kUnit{0, false, 1, false}, kRatio{0, true, 1, false};

std::string read_string(const YAML::Node& n, const Where& w) {
  if (!n.IsScalar() || n.Scalar().empty()) fail(w, "a non-empty string", describe(n));
  return n.Scalar();
}

int64_t read_int(const YAML::Node& n, const Where& w, int64_t min) {
  const std::string expected = "an integer >= " + std::to_string(min);
  int64_t v = 0;
  if (!n.IsScalar() || !parse_int(n.Scalar(), v) || v < min) fail(w, expected, describe(n));
  return v;
}

double read_double(const YAML::Node& n, const Where& w, const Range& range) {
  double v = 0;
  if (!n.IsScalar() || !parse_double(n.Scalar(), v) || !range.contains(v))
    fail(w, range.text(), describe(n));
  return v;
}

// YAML 1.1's spellings too: Axolotl reads its configs with PyYAML, where yes/no/on/off are bools.
bool read_bool(const YAML::Node& n, const Where& w, const std::string& note = "") {
  std::string s = n.IsScalar() ? n.Scalar() : "";
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (s == "true" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "no" || s == "off") return false;
  fail(w, "true or false" + note, describe(n));
}

std::string read_choice(const YAML::Node& n, const Where& w,
                        const std::vector<std::string>& allowed) {
  const std::string expected = "one of " + join(allowed);
  if (!n.IsScalar()) fail(w, expected, describe(n));
  for (const std::string& a : allowed)
    if (n.Scalar() == a) return a;
  fail(w, expected, describe(n));
}

// Calls visit(key, value, where) for each field of the map `n` that is not null.
template <typename Visit>
void for_fields(const YAML::Node& n, const Where& w, const std::string& expected, Visit visit) {
  if (!n.IsMap()) fail(w, expected, describe(n));
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) fail(w, expected, "a map with a " + describe(kv.first) + " as a key");
    const std::string& key = kv.first.Scalar();
    if (!kv.second.IsNull()) visit(key, kv.second, w.child("." + key, kv.second));
  }
}

// attn_implementation's values and the boolean each one stands for (eager: none of them).
const std::map<std::string, bool TrainConfig::*> kAttnImplementations = {
    {"eager", nullptr},
    {"sdpa", &TrainConfig::sdp_attention},
    {"flash_attention_2", &TrainConfig::flash_attention},
    {"xformers", &TrainConfig::xformers_attention},
    {"s2", &TrainConfig::s2_attention}};
const std::vector<std::pair<std::string, bool TrainConfig::*>> kAttnFlags = {
    {"flash_attention", &TrainConfig::flash_attention},
    {"xformers_attention", &TrainConfig::xformers_attention},
    {"s2_attention", &TrainConfig::s2_attention},
    {"sdp_attention", &TrainConfig::sdp_attention}};

struct Entry {
  YAML::Node value;
  Where where;
};

using Handler = std::function<void(const YAML::Node&, const Where&)>;

// One parse: the file's top-level keys, then the overrides, applied onto a default TrainConfig
// (base_model first, so HF fields given beside it win), then the checks across keys.
class Parser {
 public:
  explicit Parser(const std::string& source) : source_(source) {
    c_.source = source;
    c_.data.source = source;
    register_keys();
  }

  TrainConfig run(const YAML::Node& root, const std::map<std::string, std::string>& overrides) {
    collect(root);
    for (const auto& [key, text] : overrides) add_override(key, text);
    if (auto it = entries_.find("base_model"); it != entries_.end()) apply(it->first, it->second);
    for (const auto& [key, entry] : entries_)
      if (key != "base_model") apply(key, entry);
    validate();
    c_.unknown_keys.assign(unknown_.begin(), unknown_.end());
    return c_;
  }

 private:
  void collect(const YAML::Node& root) {
    if (root.IsNull()) return;  // an empty file: every key unset
    if (!root.IsMap())
      throw UserError(source_ + ": expected a map of keys at the top level, got " + describe(root));
    for (const auto& kv : root) {
      Where w{source_, kv.first.IsScalar() ? kv.first.Scalar() : "?", kv.first.Mark().line + 1};
      if (!kv.first.IsScalar()) fail(w, "a key name", describe(kv.first));
      entries_[w.key] = {kv.second, w};  // a repeated key: the last one wins, as in PyYAML
    }
  }

  void add_override(const std::string& key, const std::string& text) {
    Where w{source_, key, 0, true};
    // A typo on the command line would otherwise be silently ignored.
    if (!handlers_.count(key)) fail(w, "a config key llm_train knows", "an unknown key");
    try {
      entries_[key] = {YAML::Load(text), w};
    } catch (const YAML::Exception& e) {
      fail(w, "a YAML value", "'" + text + "' (" + e.msg + ")");
    }
  }

  void apply(const std::string& key, const Entry& entry) {
    auto handler = handlers_.find(key);
    if (handler == handlers_.end()) {
      unknown_.insert(key);
    } else if (!entry.value.IsNull() || key == "rope_scaling") {  // HF's null rope_scaling: none
      handler->second(entry.value, entry.where);
    }
  }

  // The location of a top-level key for checks across keys: its line when given, else none.
  Where at(const std::string& key) const {
    auto it = entries_.find(key);
    return it != entries_.end() ? it->second.where : Where{source_, key};
  }

  void register_keys();
  void read_base_model(const YAML::Node& n, const Where& w);
  void read_tokenizer_config(const YAML::Node& n, const Where& w);
  std::string beside_config(const std::string& path) const;
  void read_datasets(const YAML::Node& n, const Where& w);
  void read_rope_scaling(const YAML::Node& n, const Where& w);
  void read_checkpointing_kwargs(const YAML::Node& n, const Where& w);
  void validate();
  void check_exclusive(const std::string& a, bool a_set, const std::string& b, bool b_set) const {
    if (a_set && b_set) fail(at(b), a + " or " + b + ", not both", "both");
  }

  std::string source_;
  TrainConfig c_;
  std::map<std::string, Entry> entries_;
  std::map<std::string, Handler> handlers_;
  std::set<std::string> unknown_;
  std::optional<Entry> attn_implementation_;
};

void Parser::register_keys() {
  TrainConfig& c = c_;
  LlamaConfig& m = c_.model;
  auto integer = [](int64_t& f, int64_t min) {
    return Handler([&f, min](const YAML::Node& n, const Where& w) { f = read_int(n, w, min); });
  };
  auto number = [](double& f, Range r) {
    return Handler([&f, r](const YAML::Node& n, const Where& w) { f = read_double(n, w, r); });
  };
  auto number_f = [](float& f, Range r) {  // LlamaConfig's float fields
    return Handler([&f, r](const YAML::Node& n, const Where& w) {
      f = static_cast<float>(read_double(n, w, r));
    });
  };
  auto flag = [](bool& f) {
    return Handler([&f](const YAML::Node& n, const Where& w) { f = read_bool(n, w); });
  };
  auto text = [](std::string& f) {
    return Handler([&f](const YAML::Node& n, const Where& w) { f = read_string(n, w); });
  };
  auto choice = [](std::string& f, std::vector<std::string> allowed) {
    return Handler([&f, allowed](const YAML::Node& n, const Where& w) {
      f = read_choice(n, w, allowed);
    });
  };
  auto method = [this](void (Parser::*read)(const YAML::Node&, const Where&)) {
    return Handler([this, read](const YAML::Node& n, const Where& w) { (this->*read)(n, w); });
  };
  handlers_ = {
      // Model: a preset, then HF config.json fields.
      {"base_model", method(&Parser::read_base_model)},
      {"hidden_size", integer(m.hidden_size, 1)},
      {"intermediate_size", integer(m.intermediate_size, 1)},
      {"num_hidden_layers", integer(m.num_hidden_layers, 1)},
      {"num_attention_heads", integer(m.num_attention_heads, 1)},
      {"num_key_value_heads", integer(m.num_key_value_heads, 1)},
      {"vocab_size", integer(m.vocab_size, 1)},
      {"max_position_embeddings", integer(m.max_position_embeddings, 1)},
      {"rope_theta", number_f(m.rope.theta, kPositive)},
      {"rope_scaling", method(&Parser::read_rope_scaling)},
      {"rms_norm_eps", number_f(m.rms_norm_eps, kPositive)},
      {"tie_word_embeddings", flag(m.tie_word_embeddings)},
      {"initializer_range", number_f(m.initializer_range, kPositive)},
      {"tokenizer_config", method(&Parser::read_tokenizer_config)},
      // Data.
      {"datasets", method(&Parser::read_datasets)},
      {"dataset_prepared_path", text(c.data.dataset_prepared_path)},
      {"val_set_size",
       [&c](const YAML::Node& n, const Where& w) {
         double v = read_double(n, w, kNonNegative);
         if (v >= 1 && v != std::floor(v)) fail(w, "a fraction < 1 or a whole count", describe(n));
         c.data.val_set_size = v;
       }},
      {"sample_packing", flag(c.data.sample_packing)},
      // Training.
      {"sequence_len", integer(c.data.sequence_len, 1)},
      {"micro_batch_size", integer(c.micro_batch_size, 1)},
      {"gradient_accumulation_steps", integer(c.gradient_accumulation_steps, 1)},
      {"num_epochs", integer(c.num_epochs, 1)},
      {"max_steps", integer(c.max_steps, 1)},
      {"learning_rate", number(c.learning_rate, kPositive)},
      {"lr_scheduler", choice(c.lr_scheduler, {"cosine", "linear", "constant"})},
      {"warmup_steps", integer(c.warmup_steps, 0)},
      {"warmup_ratio", number(c.warmup_ratio, kUnit)},
      {"cosine_min_lr_ratio", number(c.cosine_min_lr_ratio, kUnit)},
      {"optimizer", choice(c.optimizer, {"adamw_torch", "adamw_torch_fused", "adamw"})},
      {"adam_beta1", number(c.adam_beta1, kBeta)},
      {"adam_beta2", number(c.adam_beta2, kBeta)},
      {"adam_epsilon", number(c.adam_epsilon, kNonNegative)},
      {"weight_decay", number(c.weight_decay, kNonNegative)},
      {"max_grad_norm", number(c.max_grad_norm, kNonNegative)},
      {"seed",
       [&c](const YAML::Node& n, const Where& w) { c.seed = uint64_t(read_int(n, w, 0)); }},
      {"bf16",
       [&c](const YAML::Node& n, const Where& w) {
         if (n.IsScalar() && n.Scalar() == "auto") {
           c.bf16 = "auto";
         } else {
           c.bf16 = read_bool(n, w, " or auto") ? "true" : "false";
         }
       }},
      {"tf32", flag(c.tf32)},
      {"device", choice(c.device, {"auto", "cpu", "cuda"})},
      // Evaluation and early stopping.
      {"eval_steps", integer(c.eval_steps, 1)},
      {"evals_per_epoch", integer(c.evals_per_epoch, 1)},
      {"early_stopping_patience", integer(c.early_stopping_patience, 1)},
      {"early_stopping_threshold", number(c.early_stopping_threshold, kNonNegative)},
      // Checkpoints.
      {"output_dir", text(c.output_dir)},
      {"save_steps", integer(c.save_steps, 1)},
      {"saves_per_epoch", integer(c.saves_per_epoch, 1)},
      {"save_total_limit", integer(c.save_total_limit, 1)},
      {"resume_from_checkpoint", text(c.resume_from_checkpoint)},
      {"auto_resume_from_checkpoints", flag(c.auto_resume_from_checkpoints)},
      {"logging_steps", integer(c.logging_steps, 1)},
      // Optimisations.
      {"gradient_checkpointing",
       [&c](const YAML::Node& n, const Where& w) {
         c.gradient_checkpointing = read_bool(n, w, " (activation offload is not supported)");
       }},
      {"gradient_checkpointing_kwargs", method(&Parser::read_checkpointing_kwargs)},
      {"flash_attention", flag(c.flash_attention)},
      {"xformers_attention", flag(c.xformers_attention)},
      {"s2_attention", flag(c.s2_attention)},
      {"sdp_attention", flag(c.sdp_attention)},
      {"attn_implementation",
       [this](const YAML::Node& n, const Where& w) {
         std::vector<std::string> names;
         for (const auto& kv : kAttnImplementations) names.push_back(kv.first);
         read_choice(n, w, names);
         attn_implementation_ = Entry{n, w};
       }},
      {"s2_group_size_ratio", number(c.s2_group_size_ratio, kRatio)},
      {"local_rank", [&c](const YAML::Node& n, const Where& w) {
         c.local_rank = static_cast<int>(read_int(n, w, 0));
       }},
      {"ddp_bucket_cap_mb", number(c.ddp_bucket_cap_mb, kPositive)},
      {"zero_stage", [&c](const YAML::Node& n, const Where& w) {
         c.zero_stage = read_int(n, w, 0);
         if (c.zero_stage > 1) fail(w, "0 or 1 (stage 1 shards the AdamW state; 2 and 3 are not offered)", describe(n));
       }},
  };
}

void Parser::read_base_model(const YAML::Node& n, const Where& w) {
  const std::string expected = "a preset (" + join(llama_preset_names()) +
                               ") or an HF model directory holding config.json"
                               " (hub ids are not downloaded)";
  if (!n.IsScalar() || n.Scalar().empty()) fail(w, expected, describe(n));
  if (std::optional<LlamaConfig> preset = llama_preset(n.Scalar())) {
    c_.base_model = n.Scalar();
    c_.model = *preset;
    return;
  }
  const std::string dir = beside_config(n.Scalar());
  if (!is_hf_model_dir(dir)) fail(w, expected, describe(n));
  c_.base_model = dir;
  c_.model = read_hf_config((fs::path(dir) / kHfConfigFile).string());
}

// As Axolotl's users expect of a config kept beside its files: a relative path that exists
// beside the config is taken from there, else it stays relative to the CWD.
std::string Parser::beside_config(const std::string& path) const {
  const fs::path config_dir = fs::path(source_).parent_path();
  const fs::path beside = config_dir / path;
  std::error_code ec;
  if (fs::path(path).is_relative() && !config_dir.empty() && fs::exists(beside, ec))
    return beside.lexically_normal().string();
  return path;
}

void Parser::read_tokenizer_config(const YAML::Node& n, const Where& w) {
  std::optional<std::string> model = find_tiktoken_model(beside_config(read_string(n, w)));
  if (!model)
    fail(w, "a tiktoken tokenizer.model file, or a directory holding tokenizer.model or "
            "original/tokenizer.model", describe(n));
  c_.tokenizer_config = *model;
}

void Parser::read_datasets(const YAML::Node& n, const Where& w) {
  const std::string expected = "a list of {path, type} entries";
  if (!n.IsSequence() || n.size() == 0) fail(w, expected, describe(n));
  std::vector<DatasetSpec> specs;
  for (size_t i = 0; i < n.size(); i++) {
    const Where wi = w.child("[" + std::to_string(i) + "]", n[i]);
    DatasetSpec spec;
    auto field = [&](const std::string& key, const YAML::Node& v, const Where& wk) {
      if (key == "path") {
        spec.path = beside_config(read_string(v, wk));
        std::error_code ec;
        if (!fs::exists(spec.path, ec)) fail(wk, "an existing file or directory", describe(v));
      } else if (key == "type") {
        spec.type = read_choice(v, wk, {"completion", "alpaca"});
      } else {
        unknown_.insert(wk.key);
      }
    };
    for_fields(n[i], wi, "a map {path, type}", field);
    if (spec.path.empty()) fail(wi, "a path in the dataset entry", "none");
    specs.push_back(spec);
  }
  c_.data.datasets = specs;
}

void Parser::read_rope_scaling(const YAML::Node& n, const Where& w) {
  RopeConfig& rope = c_.model.rope;
  if (n.IsNull()) {
    rope.factor = 0.0f;
    return;
  }
  RopeConfig s;  // low/high frequency factors and original length default to Llama 3's
  std::string type;
  for_fields(n, w, "a map {rope_type: llama3, factor, ...} or null",
             [&](const std::string& key, const YAML::Node& v, const Where& wk) {
               if (key == "rope_type" || key == "type") {  // "type": older HF configs
                 type = read_choice(v, wk, {"llama3"});
               } else if (key == "factor") {
                 s.factor = float(read_double(v, wk, {1, false, kInf, true}));
               } else if (key == "low_freq_factor") {
                 s.low_freq_factor = float(read_double(v, wk, kPositive));
               } else if (key == "high_freq_factor") {
                 s.high_freq_factor = float(read_double(v, wk, kPositive));
               } else if (key == "original_max_position_embeddings") {
                 s.original_max_position_embeddings = static_cast<int>(read_int(v, wk, 1));
               } else {
                 unknown_.insert(wk.key);
               }
             });
  if (type.empty()) fail(w.child(".rope_type", n), "llama3", "none");
  if (s.factor == 0.0f) fail(w.child(".factor", n), "a number >= 1", "none");
  if (s.low_freq_factor >= s.high_freq_factor)
    fail(w, "low_freq_factor < high_freq_factor",
         num(s.low_freq_factor) + " and " + num(s.high_freq_factor));
  rope.factor = s.factor;
  rope.low_freq_factor = s.low_freq_factor;
  rope.high_freq_factor = s.high_freq_factor;
  rope.original_max_position_embeddings = s.original_max_position_embeddings;
}

void Parser::read_checkpointing_kwargs(const YAML::Node& n, const Where& w) {
  for_fields(n, w, "a map {use_reentrant, every_n_layers}",
             [&](const std::string& key, const YAML::Node& v, const Where& wk) {
               if (key == "use_reentrant") {
                 // Picks between PyTorch's two checkpoint implementations; our recompute
                 // segments have one behaviour, so the value is checked and then ignored.
                 read_bool(v, wk);
               } else if (key == "every_n_layers") {  // ours: recompute every n-th block only
                 c_.gradient_checkpointing_every_n_layers = read_int(v, wk, 1);
               } else {
                 unknown_.insert(wk.key);
               }
             });
}

void Parser::validate() {
  TrainConfig& c = c_;
  if (std::string why = c.model.validate(); !why.empty())
    throw UserError(source_ + ": model: " + why + " (base_model " + c.base_model +
                    " with the HF fields given)");
  if (c.data.sequence_len > c.model.max_position_embeddings)
    fail(at("sequence_len"),
         "at most max_position_embeddings, " + std::to_string(c.model.max_position_embeddings),
         std::to_string(c.data.sequence_len));
  if (c.data.datasets.empty()) fail(at("datasets"), "a list of {path, type} entries", "none");
  std::error_code ec;
  // With no tokenizer_config, an HF model directory's own ranks file, when it ships one.
  if (c.tokenizer_config.empty() && fs::is_directory(c.base_model, ec))
    c.tokenizer_config = find_tiktoken_model(c.base_model).value_or("");
  if (!c.resume_from_checkpoint.empty() && !fs::is_directory(c.resume_from_checkpoint, ec))
    fail(at("resume_from_checkpoint"), "an existing checkpoint directory",
         "'" + c.resume_from_checkpoint + "'");

  check_exclusive("warmup_steps", c.warmup_steps >= 0, "warmup_ratio", c.warmup_ratio >= 0);
  check_exclusive("eval_steps", c.eval_steps > 0, "evals_per_epoch", c.evals_per_epoch > 0);
  check_exclusive("save_steps", c.save_steps > 0, "saves_per_epoch", c.saves_per_epoch > 0);

  if (c.early_stopping_patience > 0) {
    if (c.data.val_set_size == 0)
      fail(at("early_stopping_patience"), "an eval set (val_set_size > 0)", "val_set_size 0");
    // Axolotl's rule: the checkpoint of the best evaluation must be one that gets saved.
    if (c.eval_steps > 0 && c.save_steps > 0 && c.save_steps % c.eval_steps != 0)
      fail(at("save_steps"),
           "a multiple of eval_steps, " + std::to_string(c.eval_steps) + ", with early stopping",
           std::to_string(c.save_steps));
  }

  // Exactly one attention implementation, whichever spelling chose it.
  struct Choice {
    bool TrainConfig::*impl;  // nullptr: eager
    Where where;
    std::string label;
  };
  std::vector<Choice> chosen;
  for (const auto& [key, member] : kAttnFlags)
    if (c.*member) chosen.push_back({member, at(key), key + ": true"});
  if (attn_implementation_) {
    const std::string& name = attn_implementation_->value.Scalar();
    chosen.push_back({kAttnImplementations.at(name), attn_implementation_->where,
                      "attn_implementation: " + name});
  }
  for (const Choice& other : chosen)
    if (other.impl != chosen[0].impl)
      fail(other.where, "one attention implementation", chosen[0].label + " and " + other.label);
  if (!chosen.empty() && chosen[0].impl) c.*chosen[0].impl = true;

  if (c.data.sample_packing && !c.flash_attention && !c.xformers_attention && !c.s2_attention)
    fail(at("sample_packing"),
         "flash_attention or xformers_attention with it (their kernels mask across documents)",
         "true with " + std::string(c.sdp_attention ? "sdp_attention" : "eager attention"));
  if (c.s2_attention) {
    if (c.data.sample_packing)
      fail(at("sample_packing"), "false with s2_attention (its groups would span documents)",
           "true");
    const auto group = static_cast<int64_t>(c.data.sequence_len * c.s2_group_size_ratio);
    if (group < 1 || c.data.sequence_len % group != 0)
      fail(at("s2_group_size_ratio"),
           "a ratio whose group size divides sequence_len (" + std::to_string(c.data.sequence_len) + ")",
           num(c.s2_group_size_ratio) + " (group size " + std::to_string(group) + ")");
  }
}

}  // namespace

TrainConfig parse_config(const std::string& yaml_text, const std::string& source,
                         const std::map<std::string, std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw UserError(source + (e.mark.line >= 0 ? ":" + std::to_string(e.mark.line + 1) : "") +
                    ": YAML syntax error: " + e.msg);
  }
  return Parser(source).run(root, overrides);
}

TrainConfig load_config(const std::string& path,
                        const std::map<std::string, std::string>& overrides) {
  std::error_code ec;
  // Only a regular file: reading a FIFO or a socket would block forever.
  const fs::file_type type = fs::status(path, ec).type();
  if (type != fs::file_type::regular)
    throw UserError(path + ": expected a YAML config file, got " +
                    (type == fs::file_type::not_found || type == fs::file_type::none ? "no such file"
                     : type == fs::file_type::directory ? "a directory"
                     : type == fs::file_type::fifo      ? "a FIFO"
                     : type == fs::file_type::socket    ? "a socket"
                                                        : "a device or other special file"));
  std::ifstream in(path);
  if (!in) throw UserError(path + ": expected a readable YAML config file, got no permission");
  std::stringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path, overrides);
}

}  // namespace llm
