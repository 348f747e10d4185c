// defines: LoraConfig's targets, lora_linear, add_lora_term, add_dora_term, mix_seed, the linear
// modules' names and shapes, lora_trainable_parameters
#include "model/lora.h"

#include <algorithm>
#include <regex>

#include "engine/ops.h"

namespace llm {

const char* const kLinearModules[kNumLinear] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                "gate_proj", "up_proj", "down_proj"};
const std::vector<std::string> kSavableModules = {"embed_tokens", "lm_head", "classifier", "score"};

std::string linear_module_path(int kind) {
  return std::string(kind < 4 ? "self_attn." : "mlp.") + kLinearModules[kind];
}

int linear_module_index(const std::string& name) {
  for (int k = 0; k < kNumLinear; k++)
    if (name == kLinearModules[k]) return k;
  return -1;
}

bool LoraConfig::targets(int kind) const {
  return target_linear || std::count(target_modules.begin(), target_modules.end(),
                                     std::string(kLinearModules[kind])) > 0;
}

bool LoraConfig::adapts_layer(int64_t layer) const {
  return layers.empty() || std::count(layers.begin(), layers.end(), layer) > 0;
}

std::string linear_module_name(int64_t layer, int kind) {
  return "model.layers." + std::to_string(layer) + "." + linear_module_path(kind);
}

bool LoraConfig::adapts(int64_t layer, int kind) const {
  if (target_pattern.empty()) return targets(kind) && adapts_layer(layer);
  return std::regex_match(linear_module_name(layer, kind), std::regex(target_pattern));
}

std::string LoraConfig::pattern_matches_other_module(int64_t num_layers) const {
  if (target_pattern.empty()) return "";
  const std::regex pattern(target_pattern);
  std::vector<std::string> others = {"model", "model.embed_tokens", "model.layers", "model.norm", "model.rotary_emb", "lm_head"};
  for (int64_t i = 0; i < num_layers; i++)
    for (const char* inner : {"", ".self_attn", ".mlp", ".mlp.act_fn", ".input_layernorm", ".post_attention_layernorm"})
      others.push_back("model.layers." + std::to_string(i) + inner);
  for (const std::string& name : others)
    if (std::regex_match(name, pattern)) return name;
  return "";
}

bool pattern_key_matches(const std::string& key, const std::string& name) {
  return std::regex_match(name, std::regex("(.*\\.)?(" + key + ")"));
}

namespace {
// PEFT's get_pattern_key: the first key (in the given order) that names `name`.
template <typename Value>
const Value* pattern_value(const std::vector<std::pair<std::string, Value>>& patterns, const std::string& name) {
  for (const auto& [key, value] : patterns)
    if (pattern_key_matches(key, name)) return &value;
  return nullptr;
}
}  // namespace

int64_t LoraConfig::rank(int64_t layer, int kind) const {
  const int64_t* pattern_r = pattern_value(rank_pattern, linear_module_name(layer, kind));
  return pattern_r ? *pattern_r : r;
}

float LoraConfig::scale(int64_t layer, int kind) const {
  const float* pattern_alpha = pattern_value(alpha_pattern, linear_module_name(layer, kind));
  return scale_for(pattern_alpha ? *pattern_alpha : alpha, rank(layer, kind));
}

std::vector<std::string> LoraConfig::unmatched_patterns(int64_t num_layers) const {
  std::vector<std::string> keys;
  for (const auto& [key, value] : rank_pattern) keys.push_back(key);
  for (const auto& [key, value] : alpha_pattern) keys.push_back(key);
  std::vector<std::string> unmatched;
  for (const std::string& key : keys) {
    bool matched = false;
    for (int64_t i = 0; i < num_layers && !matched; i++)
      for (int k = 0; k < kNumLinear && !matched; k++)
        matched = adapts(i, k) && pattern_key_matches(key, linear_module_name(i, k));
    if (!matched && std::find(unmatched.begin(), unmatched.end(), key) == unmatched.end()) unmatched.push_back(key);
  }
  return unmatched;
}

std::vector<std::string> LoraConfig::targets() const {
  std::vector<std::string> out;
  for (int k = 0; k < kNumLinear; k++)
    if (targets(k)) out.push_back(kLinearModules[k]);
  return out;
}

Tensor lora_linear(const Tensor& x, const Tensor& w, const Tensor& a, const Tensor& b, float scale,
                   float dropout_p, uint64_t seed) {
  return add_lora_term(linear(x, w), x, a, b, scale, dropout_p, seed);
}

Tensor add_lora_term(const Tensor& base, const Tensor& x, const Tensor& a, const Tensor& b, float scale,
                     float dropout_p, uint64_t seed) {
  // Two thin GEMMs through rank r instead of one through a merged (out, in) matrix: the
  // gradients of A and B come out of the autograd of these ops.
  Tensor low = linear(linear(dropout(x, dropout_p, seed), a), b);
  return add_scaled(base, low, scale);
}

Tensor add_dora_term(const Tensor& base, const Tensor& x, const std::function<Tensor(const Tensor&)>& frozen,
                     const Tensor& a, const Tensor& b, const Tensor& magnitude, const Tensor& inverse_norms,
                     float scale, float dropout_p, uint64_t seed) {
  const Tensor c = mul(magnitude, inverse_norms);
  if (dropout_p == 0.0f) return scale_columns(add_scaled(base, linear(linear(x, a), b), scale), c);
  // (c - 1) * frozen(xd) + c * scale * low(xd) = c * (frozen(xd) + scale * low(xd)) - frozen(xd)
  const Tensor xd = dropout(x, dropout_p, seed);
  const Tensor frozen_xd = frozen(xd);
  const Tensor scaled = scale_columns(add_scaled(frozen_xd, linear(linear(xd, a), b), scale), c);
  return add(add_scaled(base, frozen_xd, -1.0f), scaled);
}

Shape linear_shape(const LlamaConfig& m, int kind) {
  const int64_t C = m.hidden_size, F = m.intermediate_size;
  const int64_t q = m.num_attention_heads * m.head_dim(), kv = m.num_key_value_heads * m.head_dim();
  const Shape shapes[kNumLinear] = {{q, C}, {kv, C}, {kv, C}, {C, q}, {F, C}, {F, C}, {C, F}};
  return shapes[kind];
}

int64_t lora_trainable_parameters(const LlamaConfig& m, const LoraConfig& lora) {
  int64_t adapters = 0;
  for (int64_t i = 0; i < m.num_hidden_layers; i++)
    for (int k = 0; k < kNumLinear; k++)
      if (lora.adapts(i, k))
        adapters += lora.rank(i, k) * (linear_shape(m, k)[0] + linear_shape(m, k)[1]) +
                    (lora.use_dora ? linear_shape(m, k)[0] : 0);
  const int64_t table = m.vocab_size * m.hidden_size;
  const int64_t whole = m.tie_word_embeddings ? (lora.saves("embed_tokens") || lora.saves("lm_head") ? table : 0)
                                             : table * (lora.saves("embed_tokens") + lora.saves("lm_head"));
  const auto rows = static_cast<int64_t>(lora.embed_token_rows.size() + lora.head_token_rows.size());
  return adapters + whole + rows * m.hidden_size;
}

uint64_t mix_seed(uint64_t seed, uint64_t use) {
  uint64_t z = seed ^ (use * 0xD1B54A32D192ED03ull + 0x8CB92BA72F3D8DD7ull);
  z = (z ^ (z >> 33)) * 0xFF51AFD7ED558CCDull;
  return z ^ (z >> 33);
}

}  // namespace llm
