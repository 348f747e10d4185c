// defines: magnitude_threshold, prune_moment, relora_prune_ratio, relora_restart
#include "train/relora.h"

#include <algorithm>
#include <cmath>

#include "engine/counter_random.h"
#include "model/lora.h"

namespace llm {

float magnitude_threshold(const std::vector<float>& values, float ratio) {
  std::vector<float> sorted(values.size());
  for (size_t i = 0; i < values.size(); i++) sorted[i] = std::fabs(values[i]);
  // torch.quantile of anything holding NaN is NaN (and NaNs would break the sort's ordering).
  if (std::any_of(sorted.begin(), sorted.end(), [](float v) { return std::isnan(v); })) return std::nanf("");
  std::sort(sorted.begin(), sorted.end());
  // torch keeps q as the input's dtype (f32) but takes its rank in double: q x (n - 1).
  const double rank = static_cast<double>(ratio) * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<size_t>(rank);
  const auto above = std::min(sorted.size() - 1, static_cast<size_t>(std::ceil(rank)));
  const auto weight = static_cast<float>(rank - static_cast<double>(below));
  const float lo = sorted[below], hi = sorted[above];
  return weight < 0.5f ? lo + weight * (hi - lo) : hi - (hi - lo) * (1.0f - weight);  // torch.lerp
}

int64_t prune_moment(std::vector<float>& values, const std::string& method, float ratio, uint64_t seed) {
  constexpr size_t kQuantileLimit = size_t(1) << 24;
  if (method == "magnitude") {
    if (values.empty() || values.size() > kQuantileLimit) return std::count(values.begin(), values.end(), 0.0f);
    const float threshold = magnitude_threshold(values, ratio);
    for (float& v : values)  // as torch's tensor.mul_(mask): -0 for a negative value, NaN stays NaN
      if (!(std::fabs(v) > threshold)) v *= 0.0f;
  } else {
    for (size_t i = 0; i < values.size(); i++)
      if (!(uniform01(seed, static_cast<int64_t>(i)) > ratio)) values[i] *= 0.0f;
  }
  return std::count(values.begin(), values.end(), 0.0f);
}

float relora_prune_ratio(const std::string& method, double configured) {
  if (configured >= 0) return static_cast<float>(configured);
  return method == "reset" ? 0.999f : 0.9f;
}

double relora_restart(LlamaModel& model, Optimizer& optimizer, const std::string& method, float ratio, uint64_t seed,
                      int64_t step) {
  const uint64_t restart_seed = mix_seed(seed, static_cast<uint64_t>(step));
  model.merge_and_redraw_adapters(restart_seed);
  int64_t zeros = 0, total = 0, index = 0;
  // AdamW hands out its moments themselves (engine/optimizer.h import_state): pruned in place.
  optimizer.export_state([&](const std::string&, const Tensor& moment) {
    std::vector<float> values = moment.to_floats();
    zeros += prune_moment(values, method, ratio, mix_seed(restart_seed, ++index));
    total += static_cast<int64_t>(values.size());
    Tensor target = moment;
    target.copy_from(Tensor::from_floats(values, moment.shape()));
  });
  return total > 0 ? static_cast<double>(zeros) / static_cast<double>(total) : 0.0;
}

}  // namespace llm
