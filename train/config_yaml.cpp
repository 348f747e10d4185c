// defines: config_to_yaml (a resolved TrainConfig -> YAML that parse_config reads back exactly),
// written row by row from the field table (train/config_fields.cpp)
#include "train/config.h"
#include "train/config_fields.h"

namespace llm {

std::string config_to_yaml(const TrainConfig& c) {
  std::string y = "# llm_train config, resolved: the preset's HF fields and datasets spelled out\n";
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

}  // namespace llm
