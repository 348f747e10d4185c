// LlamaConfig: the shape of a Llama 3 model, with HF config.json's field names, and the presets.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/ops.h"

namespace llm {

// Largest sizes a model may state, in the YAML config and in config.json alike: far above any
// Llama 3, yet small enough that products of them (parameter counts, byte sizes) stay inside
// int64 and token ids inside int32, so a typo is refused instead of overflowing.
constexpr int64_t kMaxWidth = int64_t(1) << 20;      // hidden_size, intermediate_size
constexpr int64_t kMaxLayers = 1024;                 // num_hidden_layers
constexpr int64_t kMaxHeads = 1024;                  // num_attention_heads, num_key_value_heads
constexpr int64_t kMaxVocabSize = int64_t(1) << 24;  // token ids are i32
constexpr int64_t kMaxPositions = int64_t(1) << 20;  // max_position_embeddings, sequence_len

struct LlamaConfig {
  int64_t hidden_size = 256;
  int64_t intermediate_size = 768;
  int64_t num_hidden_layers = 4;
  int64_t num_attention_heads = 8;
  int64_t num_key_value_heads = 4;
  int64_t vocab_size = 259;
  int64_t max_position_embeddings = 2048;
  float rms_norm_eps = 1e-5f;
  RopeConfig rope;  // rope_theta and rope_scaling (factor 0: none)
  bool tie_word_embeddings = true;
  float initializer_range = 0.02f;
  // config.json's pad_token_id: transformers builds embed_tokens as nn.Embedding(padding_idx=it),
  // so that row gets no gradient from the embedding lookup; -1: none (Llama 3's own configs).
  int64_t pad_token_id = -1;
  // config.json's eos_token_id when a list (Llama 3.1+ and 3.2: <|end_of_text|>, <|eom_id|>,
  // <|eot_id|>), for the generation config made from it; empty: a single id.
  std::vector<int64_t> eos_token_ids;
  // transformers' LlamaForSequenceClassification (Axolotl's reward_model: num_labels 1): a score
  // head (num_labels, C), "score.weight", in place of lm_head, read at each sequence's last
  // non-pad token; nothing ties it to the embedding. 0: LlamaForCausalLM.
  int64_t num_labels = 0;
  // With num_labels: transformers' LlamaForTokenClassification (Axolotl's process_reward_model:
  // num_labels 2), the same head read at every token, with a bias (num_labels), "score.bias", as
  // its nn.Linear has (the sequence classifier's has none).
  bool token_classification = false;
  bool has_score_bias() const { return num_labels > 0 && token_classification; }

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  int64_t head_rows() const { return num_labels > 0 ? num_labels : vocab_size; }  // lm_head's or score's
  int64_t num_parameters() const;
  std::string validate() const;  // empty when consistent, else what is wrong
};

// tiny (CPU default, byte vocabulary), llama3-1b (Llama-3.2-1B shapes), llama3-3b (Llama-3.2-3B),
// llama3-8b (Llama-3.1-8B). nullopt for an unknown name.
std::optional<LlamaConfig> llama_preset(const std::string& name);
std::vector<std::string> llama_preset_names();

}  // namespace llm
