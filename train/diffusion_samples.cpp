// defines: diffusion_sample_row, diffusion_sample_mask, denoise
#include "train/diffusion_samples.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/argmax_order.h"
#include "engine/counter_random.h"
#include "engine/ops.h"  // kIgnoreIndex
#include "io/python_shuffles.h"

namespace llm {

std::optional<DiffusionSampleRow> diffusion_sample_row(const int32_t* ids, const int32_t* labels, int64_t length,
                                                       int64_t max_length) {
  if (length < 10) return std::nullopt;  // as Axolotl: too short to show anything
  const int64_t cap = std::min(length, max_length);
  // The prompt (its labels -100) whole, then as many answer tokens as the cap leaves room for.
  const int32_t* first_answer = std::find_if(labels, labels + length, [](int32_t l) { return l != kIgnoreIndex; });
  const int64_t prompt = first_answer - labels;
  if (prompt >= cap) return std::nullopt;  // no answer, or no room for one
  const int64_t answers = std::count_if(labels + prompt, labels + length, [](int32_t l) { return l != kIgnoreIndex; });
  const int64_t kept = prompt + std::min(answers, cap - prompt);
  return DiffusionSampleRow{{ids, ids + kept}, {labels, labels + kept}};
}

std::vector<uint8_t> diffusion_sample_mask(const DiffusionSampleRow& row, uint64_t seed) {
  const int64_t n = static_cast<int64_t>(row.ids.size());
  std::vector<uint8_t> masked(static_cast<size_t>(n), 0);
  const bool prompts = std::find(row.labels.begin(), row.labels.end(), kIgnoreIndex) != row.labels.end();
  const bool answers = std::any_of(row.labels.begin(), row.labels.end(), [](int32_t l) { return l != kIgnoreIndex; });
  if (prompts && answers) {  // supervised: every answer token
    for (int64_t i = 0; i < n; i++) masked[i] = row.labels[i] != kIgnoreIndex;
    return masked;
  }
  // Otherwise a share in [0.1, 0.7), at least one token: the first of a random permutation, as
  // Axolotl's torch.randperm(total)[:count].
  const double share = 0.1 + 0.6 * static_cast<double>(uniform01(seed, 0));
  const int64_t count = std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(n) * share));
  const std::vector<int64_t> order = torch_randperm(n, counter_bits(seed, 1));
  for (int64_t i = 0; i < count; i++) masked[order[i]] = 1;
  return masked;
}

namespace {

// A uniform draw in (0, 1), never 0 or 1: Gumbel noise takes two logs of it.
double open_uniform(uint64_t seed, int64_t i) {
  return (static_cast<double>(counter_bits(seed, i) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

struct Prediction {
  int64_t position;
  int32_t token;
  double confidence;  // the token's softmax probability at the (scaled) logits
};

// The prediction for masked position `position` from its logits row (the one to its left).
Prediction predict(const float* row, int64_t vocab, int32_t mask_id, double temperature, uint64_t seed,
                   int64_t position) {
  std::vector<double> scaled(static_cast<size_t>(vocab));
  for (int64_t v = 0; v < vocab; v++) scaled[v] = temperature > 0 ? row[v] / temperature : row[v];
  if (mask_id >= 0 && mask_id < vocab) scaled[mask_id] = -std::numeric_limits<double>::infinity();
  int32_t best = 0;
  double best_score = 0;
  for (int64_t v = 0; v < vocab; v++) {
    const double score = temperature > 0 ? scaled[v] - std::log(-std::log(open_uniform(seed, position * vocab + v)))
                                         : scaled[v];
    if (v == 0 || argmax_precedes(score, v, best_score, int64_t{best}))
      best = static_cast<int32_t>(v), best_score = score;
  }
  const double top = *std::max_element(scaled.begin(), scaled.end());
  double sum = 0;
  for (const double s : scaled) sum += std::exp(s - top);
  return {position, best, std::exp(scaled[best] - top) / sum};
}

}  // namespace

std::vector<int32_t> denoise(std::vector<int32_t> ids, int32_t mask_id, int64_t vocab, int64_t steps,
                             double temperature, uint64_t seed, const SampleLogits& logits) {
  const int64_t n = static_cast<int64_t>(ids.size());
  for (int64_t step = 0; step < steps; step++) {
    std::vector<int64_t> masked;
    for (int64_t i = 0; i < n; i++)
      if (ids[i] == mask_id) masked.push_back(i);
    if (masked.empty()) break;
    const std::vector<float> table = logits(ids);
    std::vector<Prediction> predictions;
    for (const int64_t i : masked)  // scored by the logits one position to the left (position 0 by its own)
      predictions.push_back(predict(table.data() + std::max<int64_t>(i - 1, 0) * vocab, vocab, mask_id, temperature,
                                    counter_bits(seed, step), i));
    const int64_t remaining = static_cast<int64_t>(masked.size());
    // Axolotl's count, its floating-point product included.
    const double share = 1.0 / static_cast<double>(steps - step);
    const int64_t fill = step == steps - 1 ? remaining
                                           : std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(remaining) * share));
    // The most confident first (of equal ones, the leftmost).
    std::stable_sort(predictions.begin(), predictions.end(),
                     [](const Prediction& a, const Prediction& b) { return a.confidence > b.confidence; });
    for (int64_t k = 0; k < std::min(fill, remaining); k++) ids[predictions[k].position] = predictions[k].token;
  }
  return ids;
}

}  // namespace llm
