// The small model and LoRA settings test_lora, test_lora_peft and test_qlora share: a 2-layer
// Llama with GQA and untied embeddings, LoRA (r 4, alpha 8) on every linear layer, and random B
// matrices so that A's gradient is not zero.
#pragma once
#include <cstring>

#include "model/llama.h"
#include "model/lora.h"
#include "test/test_files.h"
#include "test/test_util.h"

namespace llm::testing {

inline LlamaConfig small_config() {
  LlamaConfig c;
  c.hidden_size = 16, c.intermediate_size = 24, c.num_hidden_layers = 2;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.vocab_size = 19;
  c.tie_word_embeddings = false;
  c.initializer_range = 0.2f;
  return c;
}

inline LoraConfig lora_config(float dropout = 0.0f) {
  LoraConfig l;
  l.r = 4, l.alpha = 8.0f, l.dropout = dropout;
  l.target_linear = true;
  return l;
}

inline bool bit_identical(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()) == 0;
}

// Every B of the model drawn at random (test_util's rng).
inline void randomise_b(LlamaModel& model) {
  for (const ParamRef& p : model.adapter_parameters())
    if (contains(p.name, "lora_B")) p.tensor->copy_from(randn(p.tensor->shape(), 0.3f));
}

}  // namespace llm::testing
