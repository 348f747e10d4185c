// Every field of two LlamaConfigs compared (test_hf's config.json round trips, the YAML round
// trip of test_config_table).
#pragma once
#include <doctest/doctest.h>

#include "model/llama_config.h"

namespace llm::testing {

inline void check_same_llama_config(const LlamaConfig& a, const LlamaConfig& b) {
  CHECK(a.hidden_size == b.hidden_size);
  CHECK(a.intermediate_size == b.intermediate_size);
  CHECK(a.num_hidden_layers == b.num_hidden_layers);
  CHECK(a.num_attention_heads == b.num_attention_heads);
  CHECK(a.num_key_value_heads == b.num_key_value_heads);
  CHECK(a.vocab_size == b.vocab_size);
  CHECK(a.max_position_embeddings == b.max_position_embeddings);
  CHECK(a.rms_norm_eps == b.rms_norm_eps);
  CHECK(a.rope.theta == b.rope.theta);
  CHECK(a.rope.factor == b.rope.factor);
  CHECK(a.rope.low_freq_factor == b.rope.low_freq_factor);
  CHECK(a.rope.high_freq_factor == b.rope.high_freq_factor);
  CHECK(a.rope.original_max_position_embeddings == b.rope.original_max_position_embeddings);
  CHECK(a.tie_word_embeddings == b.tie_word_embeddings);
  CHECK(a.initializer_range == b.initializer_range);
  CHECK(a.pad_token_id == b.pad_token_id);
}

}  // namespace llm::testing
