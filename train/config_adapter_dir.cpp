// defines: adopt_adapter_config (the LoRA keys a config leaves unset, taken from lora_model_dir's
// adapter_config.json, as Axolotl's PeftModel.from_pretrained takes the adapter's own settings)
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>
#include <utility>

#include "io/json_text.h"
#include "model/peft_adapter.h"
#include "train/config_fields.h"

namespace llm {

void adopt_adapter_config(ReadContext& ctx, const GivenKeys& keys) {
  if (ctx.config.lora_model_dir.empty()) return;
  const std::string path = (std::filesystem::path(ctx.config.lora_model_dir) / kPeftConfigFile).string();
  const nlohmann::json file = read_json_file(path, "PEFT's adapter_config.json");
  if (!file.is_object()) return;  // load_peft_adapter refuses it, naming what it expected
  // Axolotl's key, and the LoraConfig field of PEFT's file it sets.
  static const std::pair<const char*, const char*> kFields[] = {
      {"lora_r", "r"},
      {"lora_alpha", "lora_alpha"},
      {"lora_dropout", "lora_dropout"},
      {"lora_target_modules", "target_modules"},
      {"lora_modules_to_save", "modules_to_save"},
      {"peft_use_rslora", "use_rslora"},
      {"peft_use_dora", "use_dora"},
      {"lora_rank_pattern", "rank_pattern"},
      {"lora_alpha_pattern", "alpha_pattern"},
      {"peft_layers_to_transform", "layers_to_transform"},
      {"peft_layer_replication", "layer_replication"},
      {"peft_trainable_token_indices", "trainable_token_indices"},
      {"peft_init_lora_weights", "init_lora_weights"},
      {"peft_ensure_weight_tying", "ensure_weight_tying"},
  };
  for (const auto& [key, field] : kFields) {
    const auto value = file.find(field);
    if (keys.given(key) || value == file.end() || value->is_null() || (value->is_object() && value->empty())) continue;
    if (std::string(key) == "lora_target_modules" && keys.given("lora_target_linear")) continue;
    // JSON is YAML: the key's own reader checks the value, and a bad one is named in the file.
    find_config_field(key)->read(ctx, YAML::Load(value->dump()), Where{path, field});
  }
}

}  // namespace llm
