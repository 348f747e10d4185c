// HF interop: a model directory as transformers' LlamaForCausalLM.save_pretrained writes it and
// from_pretrained reads it (config.json + safetensors weights, io/safetensors.h), loaded into a
// LlamaModel and written back. Parameters carry HF's names, so the mapping is by name.
#pragma once
#include <cstdint>
#include <string>

#include "io/safetensors.h"
#include "model/llama.h"

namespace llm {

struct HfTokenIds {
  int32_t bos, eos;
};

// A directory holding config.json.
bool is_hf_model_dir(const std::string& dir);

// config.json -> LlamaConfig. Shape fields are required; the others take HF LlamaConfig's
// defaults. A bad value, or a model this engine cannot represent (biases, another activation,
// head_dim other than hidden_size / num_attention_heads), is a UserError naming file and key.
LlamaConfig read_hf_config(const std::string& path);

// LlamaConfig -> config.json text, with the weights' dtype (f32 or bf16) and the token ids.
std::string hf_config_json(const LlamaConfig& config, DType dtype, HfTokenIds ids);

// Llama 3's <|begin_of_text|>/<|end_of_text|> for its vocabulary, else the byte tokenizer's.
HfTokenIds default_token_ids(const LlamaConfig& config);

// Copies dir's weights into `model` (on whatever device it lives), by HF name. Every parameter
// must be there with exactly its shape and every tensor there must be a parameter (a tied
// model's lm_head.weight, which transformers ignores too, excepted). Returns the count loaded.
int64_t load_hf_weights(LlamaModel& model, const std::string& dir);

// Writes dir/config.json and the weights in `dtype` (model.safetensors, or shards and their
// index beyond max_shard_bytes).
void save_hf_model(LlamaModel& model, const std::string& dir, DType dtype, HfTokenIds ids,
                   uint64_t max_shard_bytes = kDefaultMaxShardBytes);

}  // namespace llm
