// defines: draw_diffusion_masks
#include "train/diffusion.h"

#include <fmt/core.h>

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
    const size_t first_masked = d.targets.size();
    for (int64_t i = 0; i < S; i++) {
      const int64_t at = b * S + i;
      if (labels[at] == kIgnoreIndex) continue;  // a prompt's token, or padding: never masked
      labelled++;
      if (std::find(special.begin(), special.end(), inputs[at]) != special.end()) continue;
      if (!(uniform01(token_seed, at) < p)) continue;
      d.noisy[at] = mask_id;
      d.p_sum += p;
      d.inverse_p_sum += 1.0 / p;
      d.rows.push_back(static_cast<int32_t>(b * S + std::max<int64_t>(i - 1, 0)));
      d.targets.push_back(inputs[at]);
      d.sequences.push_back(static_cast<int32_t>(b));
    }
    d.labelled += labelled;
    // A row with nothing masked adds nothing (its p may be 0 when eps is: no 1/0 then).
    const double weight = d.targets.size() == first_masked ? 0.0 : settings.importance_weighting ? 1.0 / p : 1.0;
    d.coefficients[static_cast<size_t>(b)] =
        static_cast<float>(-weight / (static_cast<double>(std::max<int64_t>(labelled, 1)) * static_cast<double>(B)));
  }
  d.masked = static_cast<int64_t>(d.targets.size());
  d.tokens = B * S;
  if (d.targets.empty()) d.rows = {0}, d.targets = {kIgnoreIndex}, d.sequences = {0};
  return d;
}

void DiffusionMetrics::add(const DiffusionDraw& d, int64_t B, double ce_sum, double hits, bool importance_weighting) {
  const double masked = static_cast<double>(d.masked);
  micro_batches += 1;
  mask_ratio += masked / static_cast<double>(d.tokens);
  num_masked_tokens += masked;
  avg_p_mask += d.masked > 0 ? d.p_sum / masked : 0.0;
  ce_loss += d.masked > 0 ? ce_sum / masked : 0.0;
  accuracy += d.masked > 0 ? hits / masked : 0.0;
  answer_ratio += static_cast<double>(d.labelled) / static_cast<double>(d.tokens);
  avg_answer_length += static_cast<double>(d.labelled) / static_cast<double>(B);
  // With none masked Axolotl's weight is 1 / 1.
  // Without importance_weighting it stays 0, and json() leaves it out, as Axolotl's log.
  if (importance_weighting) importance_weight_avg += d.masked > 0 ? d.inverse_p_sum / masked : 1.0;
}

std::string DiffusionMetrics::json(const std::string& prefix) const {
  if (micro_batches == 0) return "";
  const double n = micro_batches;
  std::string out = fmt::format(", \"{0}ce_loss\": {1:.9g}, \"{0}accuracy\": {2:.9g}, \"{0}mask_ratio\": {3:.9g}, "
                                "\"{0}num_masked_tokens\": {4:.0f}, \"{0}avg_p_mask\": {5:.9g}, \"{0}answer_ratio\": {6:.9g}, "
                                "\"{0}avg_answer_length\": {7:.9g}",
                                prefix, ce_loss / n, accuracy / n, mask_ratio / n, num_masked_tokens, avg_p_mask / n,
                                answer_ratio / n, avg_answer_length / n);
  if (importance_weight_avg > 0)
    out += fmt::format(", \"{}importance_weight_avg\": {:.9g}", prefix, importance_weight_avg / n);
  return out;
}

std::string DiffusionMetrics::text() const {
  if (micro_batches == 0) return "";
  return fmt::format(" | ce_loss {:.4f} | accuracy {:.3f} | mask_ratio {:.3f}", ce_loss / micro_batches,
                     accuracy / micro_batches, mask_ratio / micro_batches);
}

void DiffusionMetrics::to_array(double* out) const {
  // accuracy last: a checkpoint from before it was kept reads it as 0
  const double values[kFields] = {micro_batches, mask_ratio,        num_masked_tokens,     avg_p_mask, ce_loss,
                                   answer_ratio,  avg_answer_length, importance_weight_avg, accuracy};
  std::copy(values, values + kFields, out);
}

DiffusionMetrics DiffusionMetrics::from_array(const double* in) {
  return {in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], in[8]};
}

}  // namespace llm
