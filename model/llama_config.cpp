// defines: LlamaConfig::num_parameters, LlamaConfig::validate, the presets
#include "model/llama_config.h"

#include "engine/check.h"

namespace llm {

namespace {
// The parameter count in long double: sizes whose count does not fit in 64 bits are measured
// instead of wrapped, and below 2^62 every term is exact.
long double approximate_parameters(const LlamaConfig& c) {
  const long double C = c.hidden_size, F = c.intermediate_size;
  const long double kv = static_cast<long double>(c.num_key_value_heads) * c.head_dim();
  const long double per_layer = 2 * C * C + 2 * C * kv + 3 * C * F + 2 * C;  // q,o; k,v; mlp; norms
  return c.vocab_size * C + (c.tie_word_embeddings ? 0 : c.head_rows() * C) + (c.has_score_bias() ? c.num_labels : 0) +
         c.num_hidden_layers * per_layer + C;
}
constexpr long double kMaxParameters = 4.0e18L;  // under 2^62: int64 arithmetic cannot overflow
}  // namespace

int64_t LlamaConfig::num_parameters() const {
  LLM_CHECK(approximate_parameters(*this) < kMaxParameters,
            "num_parameters: the count overflows 64 bits (validate() refuses such a config)");
  const int64_t C = hidden_size, F = intermediate_size, kv = num_key_value_heads * head_dim();
  const int64_t per_layer = 2 * C * C + 2 * C * kv + 3 * C * F + 2 * C;  // q,o; k,v; mlp; norms
  return vocab_size * C + (tie_word_embeddings ? 0 : head_rows() * C) + num_hidden_layers * per_layer + C;
}

std::string LlamaConfig::validate() const {
  if (hidden_size <= 0 || intermediate_size <= 0 || num_hidden_layers <= 0 || vocab_size <= 0)
    return "hidden_size, intermediate_size, num_hidden_layers and vocab_size must be positive";
  if (num_attention_heads <= 0 || hidden_size % num_attention_heads != 0)
    return "hidden_size must be a multiple of num_attention_heads";
  if (num_key_value_heads <= 0 || num_attention_heads % num_key_value_heads != 0)
    return "num_attention_heads must be a multiple of num_key_value_heads";
  if (head_dim() % 2 != 0) return "head_dim (hidden_size / num_attention_heads) must be even for RoPE";
  if (rope.theta <= 0.0f) return "rope_theta must be positive";
  if (rms_norm_eps <= 0.0f) return "rms_norm_eps must be positive";
  if (pad_token_id >= vocab_size) return "pad_token_id must be below vocab_size (or null)";
  if (num_labels < 0 || num_labels > kMaxVocabSize) return "num_labels must be 0 (a causal LM) or a count of labels";
  if (token_classification && num_labels == 0) return "a token classifier needs num_labels";
  if (num_labels > 0 && tie_word_embeddings)
    return "a classifier's score head is its own weight: tie_word_embeddings must be false";
  if (approximate_parameters(*this) >= kMaxParameters)
    return "the parameter count does not fit in 64 bits; lower hidden_size, intermediate_size, "
           "num_hidden_layers or vocab_size";
  return "";
}

std::optional<LlamaConfig> llama_preset(const std::string& name) {
  LlamaConfig c;  // defaults are the tiny preset: bytes + BOS/EOS/PAD, 4 layers of width 256
  RopeConfig llama3_x32{500000.0f, 32.0f, 1.0f, 4.0f, 8192};
  if (name == "tiny") return c;
  c.vocab_size = 128256;
  c.max_position_embeddings = 131072;
  c.num_key_value_heads = 8;
  if (name == "llama3-1b") {
    c.hidden_size = 2048, c.intermediate_size = 8192, c.num_hidden_layers = 16;
    c.num_attention_heads = 32, c.rope = llama3_x32, c.tie_word_embeddings = true;
  } else if (name == "llama3-3b") {
    c.hidden_size = 3072, c.intermediate_size = 8192, c.num_hidden_layers = 28;
    c.num_attention_heads = 24, c.rope = llama3_x32, c.tie_word_embeddings = true;
  } else if (name == "llama3-8b") {
    c.hidden_size = 4096, c.intermediate_size = 14336, c.num_hidden_layers = 32;
    c.num_attention_heads = 32, c.rope = {500000.0f, 8.0f, 1.0f, 4.0f, 8192};
    c.tie_word_embeddings = false;
  } else if (name == "llama3-70b") {
    c.hidden_size = 8192, c.intermediate_size = 28672, c.num_hidden_layers = 80;
    c.num_attention_heads = 64, c.rope = {500000.0f, 8.0f, 1.0f, 4.0f, 8192};
    c.tie_word_embeddings = false;
  } else {
    return std::nullopt;
  }
  return c;
}

std::vector<std::string> llama_preset_names() {
  return {"tiny", "llama3-1b", "llama3-3b", "llama3-8b", "llama3-70b"};
}

}  // namespace llm
