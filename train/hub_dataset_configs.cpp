// defines: hub_dataset_configs, choose_hub_dataset_config, stays_inside
// (train/hub_dataset_configs.h)
#include "train/hub_dataset_configs.h"

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <stdexcept>

#include <yaml-cpp/yaml.h>

#include "io/dataset_split.h"
#include "io/json_text.h"

namespace llm {

namespace fs = std::filesystem;

namespace {

// The YAML between a leading "---" line (after blank lines, as huggingface_hub's card regex
// allows) and the next "---" line; empty when the file has none.
std::string front_matter(const std::string& text) {
  std::istringstream in(text.substr(std::min(text.size(), text.find_first_not_of(" \t\r\n"))));
  std::string line, yaml;
  if (!std::getline(in, line) || line.rfind("---", 0) != 0) return "";
  while (std::getline(in, line)) {
    if (line.rfind("---", 0) == 0) return yaml;
    yaml += line + "\n";
  }
  return "";  // never closed: not front matter
}

// A scalar field as text, or a refusal naming it (yaml-cpp's own says only "bad conversion").
// A path or name with a NUL byte would name another file than it reads as (the system stops at it).
std::string text_of(const YAML::Node& n, const std::string& where, const std::string& expected) {
  if (!n.IsScalar()) throw std::runtime_error(where + ": expected " + expected);
  std::string text = n.as<std::string>();
  if (text.find('\0') != std::string::npos) throw std::runtime_error(where + ": expected " + expected + " without NUL bytes");
  return text;
}

std::vector<std::string> strings_of(const YAML::Node& n, const std::string& where) {
  if (n.IsScalar()) return {text_of(n, where, "a path or a list of paths")};
  if (!n.IsSequence()) throw std::runtime_error(where + ": expected a path or a list of paths");
  std::vector<std::string> out;
  for (const YAML::Node& item : n) out.push_back(text_of(item, where, "a path or a list of paths"));
  return out;
}

// HF's data_files: a pattern or a list of them (the train split), or a list of {split, path}
// entries, each exactly those two keys, a split name once (datasets' metadata checks; a map of
// split -> patterns it refuses too).
std::vector<std::pair<std::string, std::vector<std::string>>> split_patterns(const YAML::Node& data_files,
                                                                             const std::string& where) {
  if (!data_files) return {};
  if (data_files.IsNull())  // datasets raises a TypeError on it
    throw std::runtime_error(where + ": expected a path, a list of paths or a list of {split, path}, got null");
  if (data_files.IsSequence() && data_files.size() > 0 && data_files[0].IsMap()) {
    std::vector<std::pair<std::string, std::vector<std::string>>> out;
    for (const YAML::Node& entry : data_files) {
      if (!entry.IsMap() || entry.size() != 2 || !entry["path"] || !entry["split"])
        throw std::runtime_error(where + ": expected entries of exactly {split, path}, as HF's datasets reads them");
      const std::string split = text_of(entry["split"], where + ".split", "a split name");
      const std::optional<RowSlice> name = parse_split(split);
      if (!name || name->split != split)
        throw std::runtime_error(where + ".split: expected a split name (\\w+(\\.\\w+)*), got '" + split + "'");
      for (const auto& [seen, patterns] : out)
        if (seen == split) throw std::runtime_error(where + ": split '" + split + "' is given twice");
      out.emplace_back(split, strings_of(entry["path"], where + ".path"));
    }
    return out;
  }
  if (data_files.IsMap())
    throw std::runtime_error(where + ": expected a path, a list of paths or a list of {split, path}, got a map");
  return {{"train", strings_of(data_files, where)}};
}

}  // namespace

std::vector<HubDatasetConfig> hub_dataset_configs(const std::string& dir) {
  const fs::path readme = fs::path(dir) / "README.md";
  std::error_code ec;
  if (!fs::exists(readme, ec)) return {};
  const std::string yaml = front_matter(read_whole_file(readme.string(), "a dataset card (README.md)"));
  if (yaml.empty()) return {};
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(readme.string() + ": its front matter is not YAML (" + e.msg + ")");
  }
  if (!root.IsMap() || !root["configs"]) return {};
  const YAML::Node list = root["configs"];
  const std::string where = readme.string() + ": configs";
  if (!list.IsSequence()) throw std::runtime_error(where + ": expected a list of {config_name, data_files}");
  std::vector<HubDatasetConfig> configs;
  for (size_t i = 0; i < list.size(); i++) {
    const YAML::Node c = list[i];
    const std::string at = where + "[" + std::to_string(i) + "]";
    if (!c.IsMap() || !c["config_name"]) throw std::runtime_error(at + ": expected {config_name, data_files}");
    HubDatasetConfig config;
    config.name = text_of(c["config_name"], at + ".config_name", "a name");
    config.is_default = c["default"] && c["default"].as<bool>(false);
    config.split_files = split_patterns(c["data_files"], at + ".data_files");
    if (c["data_dir"]) {
      // HF resolves it inside the dataset's repo: one that leaves the directory is refused, as
      // data_files that do are (a card must not send training to read files elsewhere).
      const fs::path data_dir =
          fs::path(text_of(c["data_dir"], at + ".data_dir", "a directory")).lexically_normal();
      if (!stays_inside(data_dir.string()))
        throw std::runtime_error(at + ".data_dir: expected a directory inside the dataset, got '" +
                                 data_dir.generic_string() + "'");
      config.data_dir = data_dir.generic_string();
    }
    configs.push_back(std::move(config));
  }
  // datasets' get_default_config_name: one default at most, marked `default: true` or named default.
  if (std::count_if(configs.begin(), configs.end(),
                    [](const HubDatasetConfig& c) { return c.is_default || c.name == "default"; }) > 1)
    throw std::runtime_error(where + ": expected one default config at most (default: true, or the one named "
                             "default), got several");
  return configs;
}

const HubDatasetConfig* choose_hub_dataset_config(const std::vector<HubDatasetConfig>& configs,
                                                  const std::string& name, std::string& why) {
  auto find = [&](auto&& pred) -> const HubDatasetConfig* {
    auto it = std::find_if(configs.begin(), configs.end(), pred);
    return it == configs.end() ? nullptr : &*it;
  };
  const HubDatasetConfig* chosen =
      !name.empty() ? find([&](const HubDatasetConfig& c) { return c.name == name; })
                    : find([](const HubDatasetConfig& c) { return c.is_default; });
  if (!chosen && name.empty()) chosen = find([](const HubDatasetConfig& c) { return c.name == "default"; });
  if (!chosen && name.empty() && configs.size() == 1) chosen = &configs[0];
  if (!chosen) {
    why = configs.empty() ? "no configs in its README.md" : "configs ";
    for (size_t i = 0; i < configs.size(); i++) why += (i ? ", " : "") + configs[i].name;
  }
  return chosen;
}

bool stays_inside(const std::string& relative) {
  const fs::path p = fs::path(relative).lexically_normal();
  return !p.is_absolute() && p.generic_string().rfind("..", 0) != 0;
}

}  // namespace llm
