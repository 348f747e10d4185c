// Sampling text from a model: the end of `make train` shows what the model learned, and
// `llm_train inference` answers a prompt as Axolotl's inference command does.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "model/llama.h"

namespace llm {

struct SampleOptions {
  int64_t max_new_tokens = 100;
  int64_t context = 256;     // the model sees at most this many trailing tokens
  float temperature = 0.8f;  // 0: greedy
  // HF's GenerationConfig processors, in its order: repetition_penalty (1: none) on the logit of
  // every id in the prompt or generated so far (a negative one times it, else divided by it);
  // then the temperature, then top_k (0: none) and top_p (1: none), each keeping at least one id.
  float repetition_penalty = 1.0f;
  int64_t top_k = 0;
  float top_p = 1.0f;
  std::vector<int32_t> stop_tokens;  // stop after emitting one of them (e.g. EOS)
  uint64_t seed = 0;
  SsmaxOptions ssmax;  // the attention the model trained with (ForwardOptions::ssmax)
  std::function<void(int32_t)> on_token;  // each new token as it is drawn (a streamer), if set
};

// The distribution the next token is drawn from (temperature above 0): `logits` of every id
// through opt's processors, then softmax; `seen` the ids repetition_penalty applies to.
std::vector<double> next_token_probabilities(std::vector<float> logits, const std::vector<int32_t>& seen,
                                             const SampleOptions& opt);

// Appends sampled tokens to `prompt` and returns only the new ones. Keys and values of earlier
// positions are cached, so each new token runs alone through the layers (until the context is
// full; then the window slides and each token re-runs it).
std::vector<int32_t> sample(LlamaModel& model, std::vector<int32_t> prompt, const SampleOptions& opt);

}  // namespace llm
