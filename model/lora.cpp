// defines: LoraConfig's targets, lora_linear, add_lora_term, mix_seed, the linear modules' names
#include "model/lora.h"

#include <algorithm>

#include "engine/ops.h"

namespace llm {

const char* const kLinearModules[kNumLinear] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                "gate_proj", "up_proj", "down_proj"};
const std::vector<std::string> kSavableModules = {"embed_tokens", "lm_head"};

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

uint64_t mix_seed(uint64_t seed, uint64_t use) {
  uint64_t z = seed ^ (use * 0xD1B54A32D192ED03ull + 0x8CB92BA72F3D8DD7ull);
  z = (z ^ (z >> 33)) * 0xFF51AFD7ED558CCDull;
  return z ^ (z >> 33);
}

}  // namespace llm
