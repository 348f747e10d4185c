// HF's config.json for a Llama model: LlamaConfig read from it and written to it, as
// transformers' LlamaConfig reads and writes the file (model/hf_checkpoint.h adds the weights).
#pragma once
#include <cstdint>
#include <string>

#include "engine/dtype.h"
#include "model/llama_config.h"

namespace llm {

constexpr const char* kHfConfigFile = "config.json";

struct HfTokenIds {
  int32_t bos, eos;
  // The tokenizer's pad id: a sequence classifier's config.json names it, over the model's own
  // (transformers pools its scores at the last token that is not it; TRL's RewardTrainer sets the
  // model's to the tokenizer's before training, so its save writes this one). -1: none.
  int32_t pad = -1;
};

// A directory holding config.json.
bool is_hf_model_dir(const std::string& dir);

// config.json -> LlamaConfig. Shape fields are required; the others take HF LlamaConfig's
// defaults. A bad value, or a model this engine cannot represent (biases, another activation,
// head_dim other than hidden_size / num_attention_heads), is a UserError naming file and key.
LlamaConfig read_hf_config(const std::string& path);

// LlamaConfig -> config.json text, with the weights' dtype (f32 or bf16) and the token ids:
// eos_token_id is the tokenizer's, as Axolotl's loader sets it where the base's differs (a list).
std::string hf_config_json(const LlamaConfig& config, DType dtype, HfTokenIds ids);

constexpr const char* kHfGenerationConfigFile = "generation_config.json";
// What transformers' GenerationConfig.from_model_config makes of the base's config.json (its list
// of end ids when it holds ids.eos), for a model whose base has no generation_config.json.
std::string hf_generation_config_json(const LlamaConfig& config, HfTokenIds ids);

}  // namespace llm
