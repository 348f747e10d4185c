// defines: config_to_yaml (a resolved TrainConfig -> YAML that parse_config reads back exactly),
// written row by row from the field table (train/config_fields.cpp); config_to_save,
// config_changes (what a resume changes against a checkpoint's config)
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>

#include "train/config.h"
#include "train/config_fields.h"

namespace llm {

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
