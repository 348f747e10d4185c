// defines: unsupported_setting (Axolotl keys that change training and that llm_train does not
// build: a config using them stops at start-up, one line per key, instead of training something
// else in silence)
#include <cctype>
#include <optional>
#include <string>

#include "train/config_fields.h"

namespace llm {
namespace {

// True when a value asks for something: not null, false, "", an empty list or an empty map.
bool is_set(const YAML::Node& n) {
  if (n.IsNull()) return false;
  if (n.IsSequence() || n.IsMap()) return n.size() > 0;
  std::string s = n.Scalar();
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return !(s.empty() || s == "false" || s == "no" || s == "off" || s == "0");
}

struct Unsupported {
  const char* key;
  const char* why;  // what llm_train does instead, or what to change
};

// Keys that, when set, would make Axolotl train differently from what llm_train would do.
// Keys that only affect logging, hub uploads or speed (wandb_*, hub_model_id, strict,
// torch_compile, liger_*, ...) are merely listed as unused.
const Unsupported kUnsupported[] = {
    {"gptq", "GPTQ base weights are not built"},
    {"fp16", "fp16 training is not offered: use bf16 (or f32)"},
    {"group_by_length", "batches are not grouped by length: rows are shuffled per epoch"},
    {"neftune_noise_alpha", "NEFTune embedding noise is not built"},
    {"noisy_embedding_alpha", "NEFTune embedding noise is not built"},
    {"rl", "preference training (DPO, KTO, ORPO, ...) is not built: supervised training only"},
    {"unfrozen_parameters", "every parameter trains: freezing a subset is not built"},
    {"lr_quadratic_warmup", "warmup is linear"},
    {"default_system_message", "chat templates render the dataset's own messages only"},
    {"relora_steps", "ReLoRA is not built"},
    {"sequence_parallel_degree", "sequence parallelism is not built"},
    {"qat", "quantization-aware training (fake-quantised weights and activations) is not built"},
    {"fp8", "fp8 matmuls are not built: bf16 (or f32) compute"},
    {"diffusion", "diffusion language-model training is not built: next-token loss only"},
    {"llmcompressor", "sparse fine-tuning recipes (llmcompressor) are not built"},
};

}  // namespace

std::optional<std::string> unsupported_setting(const std::string& key, const YAML::Node& value) {
  for (const Unsupported& u : kUnsupported)
    if (key == u.key && is_set(value)) return std::string(u.why);
  return std::nullopt;
}

}  // namespace llm
