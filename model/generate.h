// Sampling text from a model: the end of `make train` shows what the model learned.
#pragma once
#include <cstdint>
#include <vector>

#include "model/llama.h"

namespace llm {

struct SampleOptions {
  int64_t max_new_tokens = 100;
  int64_t context = 256;     // the model sees at most this many trailing tokens
  float temperature = 0.8f;  // 0: greedy
  int32_t stop_token = -1;   // stop after emitting it (e.g. EOS); -1: never
  uint64_t seed = 0;
  SsmaxOptions ssmax;  // the attention the model trained with (ForwardOptions::ssmax)
};

// Appends sampled tokens to `prompt` and returns only the new ones. Keys and values of earlier
// positions are cached, so each new token runs alone through the layers (until the context is
// full; then the window slides and each token re-runs it).
std::vector<int32_t> sample(LlamaModel& model, std::vector<int32_t> prompt, const SampleOptions& opt);

}  // namespace llm
