// defines: read_config_yaml (a config's text checked as Axolotl's yaml.safe_load reads it, then
// loaded, its explicit tags and merge keys applied), config_to_yaml (a resolved TrainConfig -> YAML that parse_config reads back exactly),
// written row by row from the field table (train/config_fields.cpp); config_to_save,
// config_changes (what a resume changes against a checkpoint's config)
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "engine/user_error.h"
#include "io/python_text.h"  // first_ill_formed_utf8
#include "train/config.h"
#include "train/config_fields.h"
#include "train/pyyaml_scalars.h"

namespace llm {
namespace {

// The 1-based line of a document marker ("---", or content after "...") that follows the first
// document's start (its "---" or its first content), or 0. Markers sit at the start of a line, where no scalar's text can (YAML
// ends a document there), so the text shows them. (yaml-cpp's LoadAll would say it too, but
// spins on some malformed input, which llm_fuzz found.)
int64_t second_document_line(const std::string& text) {
  auto marker = [](const std::string& line, const char* m) {
    return line.rfind(m, 0) == 0 && (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
  };
  bool started = false, ended = false;  // started: by a "---" or by content
  std::istringstream lines(text.rfind("\xEF\xBB\xBF", 0) == 0 ? text.substr(3) : text);  // a BOM, as PyYAML skips it
  int64_t number = 0;
  for (std::string line; std::getline(lines, line);) {
    number++;
    const size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    if (marker(line, "---")) {
      if (started || ended) return number;
      started = true;
    } else if (marker(line, "...")) {
      ended = true;
    } else if (ended) {  // content, or the directives of another document
      return number;
    } else if (line[0] != '%') {  // a directive (%YAML, %TAG) precedes its document
      started = true;
    }
  }
  return 0;
}

// YAML 1.1's merge key, as PyYAML's SafeLoader (Axolotl's yaml.safe_load) applies it: `<<: *map`
// or `<<: [*a, *b]` puts the merged maps' keys into the map that holds it, below its own keys (a
// key the map gives wins; of a list of maps the first that gives a key wins), merged maps flattened
// first. yaml-cpp leaves `<<` as a key. Every map of the document is flattened in place, so the
// merged keys keep the lines they were written on. Containers are visited once, by where they
// start (an alias is the node it names), so a structure that holds itself ends.
class MergeKeys {
 public:
  explicit MergeKeys(const std::string& source) : source_(source) {}

  void flatten(YAML::Node node) {
    if (!node.IsMap() && !node.IsSequence()) return;
    if (!visited_.insert({node.Mark().pos, static_cast<int>(node.Type())}).second) return;
    if (node.IsSequence()) {
      for (YAML::Node item : node) flatten(item);
      return;
    }
    std::vector<std::pair<YAML::Node, YAML::Node>> merged;  // in PyYAML's order: the last of a key wins
    std::set<std::string> own;
    bool any = false;
    for (const auto& kv : node) {
      if (!is_merge_key(kv.first)) {
        own.insert(kv.first.IsScalar() ? kv.first.Scalar() : std::string());
        continue;
      }
      any = true;
      // Built by copies, never assigned: assigning a YAML::Node rebinds the node it refers to (so
      // std::reverse would rewrite the document's maps).
      std::vector<YAML::Node> maps;
      if (kv.second.IsMap()) {
        maps.push_back(kv.second);
      } else if (kv.second.IsSequence()) {
        for (size_t i = kv.second.size(); i-- > 0;) {  // the last map first: the first one given wins
          if (!kv.second[i].IsMap()) refuse(kv.second[i], "a mapping in the list to merge");
          maps.push_back(kv.second[i]);
        }
      } else {
        refuse(kv.second, "a mapping or a list of mappings to merge");
      }
      for (const YAML::Node& map : maps) {
        flatten(map);
        for (const auto& pair : map)
          if (!is_merge_key(pair.first)) merged.emplace_back(pair.first, pair.second);  // left in a map that merges itself
      }
    }
    if (!any) {
      for (const auto& kv : node) flatten(kv.second);
      return;
    }
    // PyYAML puts the merged pairs before the map's own and builds a dict of them all: a key
    // stands where it first appears, with the value given last (the map's own, where it gives one).
    // The map is laid out again so: its own entries taken out, then put back in that order.
    std::vector<std::pair<YAML::Node, YAML::Node>> own_pairs;
    for (const auto& kv : node)
      if (!is_merge_key(kv.first)) own_pairs.emplace_back(kv.first, kv.second);
    for (const auto& pair : own_pairs) node.remove(pair.first);
    while (remove_merge_key(node)) {
    }
    std::map<std::string, size_t> last;  // each merged key's winning entry
    for (size_t i = 0; i < merged.size(); i++) last[name_of(merged[i].first)] = i;
    std::set<std::string> placed;
    const auto place = [&](const std::string& name) {
      if (!placed.insert(name).second) return;
      if (!own.count(name)) return node.force_insert(merged[last[name]].first, merged[last[name]].second);
      for (const auto& pair : own_pairs)  // each entry the map gives it: a key given twice is reported later
        if (name_of(pair.first) == name) node.force_insert(pair.first, pair.second);
    };
    for (const auto& pair : merged) place(name_of(pair.first));
    for (const auto& pair : own_pairs) place(name_of(pair.first));
    for (const auto& kv : node) flatten(kv.second);
  }

 private:
  static bool is_merge_key(const YAML::Node& key) {
    return key.IsScalar() && ((key.Tag() == "?" && key.Scalar() == "<<") || key.Tag() == "tag:yaml.org,2002:merge");
  }
  static std::string name_of(const YAML::Node& key) { return key.IsScalar() ? key.Scalar() : std::string(); }
  static bool remove_merge_key(YAML::Node& node) {
    for (const auto& kv : node)
      if (is_merge_key(kv.first)) return node.remove(kv.first);
    return false;
  }
  [[noreturn]] void refuse(const YAML::Node& value, const std::string& expected) const {
    const std::string got = value.IsSequence() ? "a list" : value.IsNull() ? "null" : "'" + value.Scalar() + "'";
    throw UserError(source_ + ":" + std::to_string(value.Mark().line + 1) + ": <<: expected " + expected +
                    " (YAML's merge key), got " + got);
  }

  const std::string& source_;
  std::set<std::pair<int, int>> visited_;
};

// PyYAML's composer refuses an anchor defined twice in a document ("found duplicate anchor"),
// where yaml-cpp lets the second replace the first: one more pass of yaml-cpp's event parser over
// the document it has loaded finds the first repeated name.
class RepeatedAnchor : public YAML::EventHandler {
 public:
  struct Repeat {
    std::string name;
    int first_line = 0, line = 0;  // 1-based
  };
  static std::optional<Repeat> find(const std::string& text) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    RepeatedAnchor handler;
    parser.HandleNextDocument(handler);
    return handler.repeat_;
  }

  void OnAnchor(const YAML::Mark& mark, const std::string& name) override {
    const auto [first, fresh] = lines_.emplace(name, mark.line + 1);
    if (!fresh && !repeat_) repeat_ = Repeat{name, first->second, mark.line + 1};
  }
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

 private:
  std::map<std::string, int> lines_;
  std::optional<Repeat> repeat_;
};

}  // namespace

YAML::Node read_config_yaml(const std::string& yaml_text, const std::string& source, bool resolved) {
  // yaml-cpp reads a NUL byte as an escape of what follows it ("unknown escape character").
  if (const size_t nul = yaml_text.find('\0'); nul != std::string::npos)
    throw UserError(source + ":" + std::to_string(std::count(yaml_text.begin(), yaml_text.begin() + nul, '\n') + 1) +
                    ": YAML syntax error: a NUL byte (YAML text holds none)");
  // A checkpoint's config is ours, its paths the filesystem's bytes (a directory's name need not
  // be UTF-8); a user's is read as Axolotl's yaml.safe_load reads it: UTF-8, exactly one document.
  const size_t bad = resolved ? std::string::npos : first_ill_formed_utf8(yaml_text);
  if (bad != std::string::npos)
    throw UserError(source + ":" + std::to_string(std::count(yaml_text.begin(), yaml_text.begin() + bad, '\n') + 1) +
                    ": expected UTF-8 text, got a byte that starts no UTF-8 character at byte " + std::to_string(bad + 1));
  if (const int64_t line = resolved ? 0 : second_document_line(yaml_text))
    throw UserError(source + ":" + std::to_string(line) + ": expected one YAML document, got a second one starting "
                    "here (a config is one mapping, as Axolotl's yaml.safe_load reads it)");
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    // Its depth limit says "bad file" (ErrorMsg::BAD_FILE), which names no cause.
    const std::string why = e.msg == YAML::ErrorMsg::BAD_FILE ? "nested deeper than the YAML reader takes" : e.msg;
    throw UserError(source + (e.mark.line >= 0 ? ":" + std::to_string(e.mark.line + 1) : "") +
                    ": YAML syntax error: " + why);
  }
  if (const std::optional<RepeatedAnchor::Repeat> repeat = resolved ? std::nullopt : RepeatedAnchor::find(yaml_text))
    throw UserError(source + ":" + std::to_string(repeat->line) + ": YAML: expected each anchor defined once, as "
                    "Axolotl's yaml.safe_load reads a config, got &" + repeat->name + " again (first at line " +
                    std::to_string(repeat->first_line) + ")");
  apply_yaml_tags(root, yaml_text, !resolved, Where{source, ""});
  MergeKeys(source).flatten(root);
  return root;
}

std::string config_to_yaml(const TrainConfig& c) {
  std::string y = std::string(kResolvedConfigHeader) + ": the preset's HF fields and datasets spelled out\n";
  const char* section = nullptr;
  for (const ConfigField& field : config_fields()) {
    if (!field.write) continue;
    if (!section || std::string(section) != field.section)
      y += std::string("\n# ") + (section = field.section) + "\n";
    const std::string value = field.write(c);
    const bool block = !value.empty() && value[0] == '\n';
    y += field.name + ":" + (value.empty() || block ? "" : " ") + value + "\n";
  }
  return y;
}

TrainConfig config_to_save(const TrainConfig& config) {
  namespace fs = std::filesystem;
  TrainConfig saved = config;
  saved.resume_from_checkpoint.clear();
  saved.auto_resume_from_checkpoints = false;
  std::error_code ec;
  saved.output_dir = fs::absolute(config.output_dir, ec).lexically_normal().string();
  if (!saved.data.dataset_prepared_path.empty())
    saved.data.dataset_prepared_path = fs::absolute(saved.data.dataset_prepared_path, ec).lexically_normal().string();
  return saved;
}

std::vector<ConfigChange> config_changes(const std::string& saved_yaml, const std::string& now_yaml) {
  const auto one_line = [](const YAML::Node& n) {
    YAML::Emitter out;
    out.SetMapFormat(YAML::Flow);
    out.SetSeqFormat(YAML::Flow);
    out << n;
    std::string text = out.c_str();
    std::replace(text.begin(), text.end(), '\n', ' ');  // a block scalar's lines
    return text;
  };
  const YAML::Node saved = YAML::Load(saved_yaml), now = YAML::Load(now_yaml);
  std::vector<ConfigChange> changes;
  for (const auto& kv : now) {
    const std::string key = kv.first.Scalar();
    const YAML::Node before = saved[key];
    if (!before.IsDefined()) continue;
    const std::string was = one_line(before), is = one_line(kv.second);
    if (was != is) changes.push_back({key, was, is});
  }
  return changes;
}

}  // namespace llm
