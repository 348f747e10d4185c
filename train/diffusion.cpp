// defines: draw_diffusion_masks
#include "train/diffusion.h"

#include <algorithm>

#include "engine/counter_random.h"
#include "engine/ops.h"

namespace llm {

DiffusionDraw draw_diffusion_masks(const std::vector<int32_t>& inputs, const std::vector<int32_t>& labels, int64_t B,
                                   int64_t S, const DiffusionSettings& settings, int32_t mask_id,
                                   const std::vector<int32_t>& special, uint64_t seed) {
  DiffusionDraw d;
  d.noisy = inputs;
  d.coefficients.resize(static_cast<size_t>(B));
  // Two streams from one seed: the rows' times, then the tokens' draws.
  const uint64_t token_seed = counter_bits(seed, -1);
  const double eps = settings.eps;
  for (int64_t b = 0; b < B; b++) {
    const double p = (1.0 - eps) * uniform01(seed, b) + eps;
    int64_t labelled = 0;
    for (int64_t i = 0; i < S; i++) {
      const int64_t at = b * S + i;
      if (labels[at] == kIgnoreIndex) continue;  // a prompt's token, or padding: never masked
      labelled++;
      if (std::find(special.begin(), special.end(), inputs[at]) != special.end()) continue;
      if (!(uniform01(token_seed, at) < p)) continue;
      d.noisy[at] = mask_id;
      d.rows.push_back(static_cast<int32_t>(b * S + std::max<int64_t>(i - 1, 0)));
      d.targets.push_back(inputs[at]);
      d.sequences.push_back(static_cast<int32_t>(b));
    }
    const double weight = settings.importance_weighting ? 1.0 / p : 1.0;
    d.coefficients[static_cast<size_t>(b)] =
        static_cast<float>(-weight / (static_cast<double>(std::max<int64_t>(labelled, 1)) * static_cast<double>(B)));
  }
  d.masked = static_cast<int64_t>(d.targets.size());
  if (d.targets.empty()) d.rows = {0}, d.targets = {kIgnoreIndex}, d.sequences = {0};
  return d;
}

}  // namespace llm
