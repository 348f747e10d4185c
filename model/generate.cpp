// defines: sample (temperature sampling from the last position's logits)
#include "model/generate.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "engine/autograd.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

std::vector<int32_t> sample(LlamaModel& model, std::vector<int32_t> tokens, const SampleOptions& opt) {
  LLM_CHECK(!tokens.empty(), "sample: the prompt must hold at least one token");
  NoGradGuard no_grad;
  std::mt19937_64 rng(opt.seed);
  std::vector<int32_t> generated;
  for (int64_t n = 0; n < opt.max_new_tokens; n++) {
    const int64_t len = std::min<int64_t>(opt.context, static_cast<int64_t>(tokens.size()));
    std::vector<int32_t> window(tokens.end() - len, tokens.end()), pos(len);
    for (int64_t i = 0; i < len; i++) pos[i] = static_cast<int32_t>(i);
    Device dev = model.device();
    Tensor hidden = model.hidden_states(Tensor::from_ints(window, {1, len}, dev),
                                        Tensor::from_ints(pos, {1, len}, dev));
    Tensor last = hidden.narrow(0, len - 1, 1);
    const LlamaConfig& c = model.config();
    std::vector<float> logits = model.logits_from_hidden(last).to_floats();
    int32_t next = 0;
    if (opt.temperature <= 0.0f) {
      next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    } else {
      float mx = *std::max_element(logits.begin(), logits.end());
      std::vector<double> weights(c.vocab_size);
      for (int64_t v = 0; v < c.vocab_size; v++) weights[v] = std::exp((logits[v] - mx) / opt.temperature);
      next = static_cast<int32_t>(std::discrete_distribution<int64_t>(weights.begin(), weights.end())(rng));
    }
    tokens.push_back(next);
    generated.push_back(next);
    if (next == opt.stop_token) break;
  }
  return generated;
}

}  // namespace llm
