// defines: rope_inv_freq (with Llama 3's, linear or YaRN's frequency scaling), rope_attention_factor, rope (backward = inverse rotation),
// ssmax_scale (SSMax's per-query factors from the same positions)
#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <tuple>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

namespace {

// As HF's _compute_yarn_parameters: each frequency between its extrapolation (unscaled, the
// highest ones) and its interpolation (over factor, the lowest), by a ramp over the dims whose
// rotations in the original context fall between beta_fast and beta_slow; the ends in f64 as
// Python's math, the ramp and the blend in f32 as torch's.
std::vector<float> yarn_inv_freq(const RopeConfig& c, int dim, const std::vector<float>& extrapolation) {
  const double original = c.original_max_position_embeddings, base = c.theta;
  auto correction_dim = [&](double rotations) {
    return dim * std::log(original / (rotations * 2 * M_PI)) / (2 * std::log(base));
  };
  double low = correction_dim(c.beta_fast), high = correction_dim(c.beta_slow);
  if (c.truncate) low = std::floor(low), high = std::ceil(high);
  low = std::max(low, 0.0), high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;  // HF's guard against a zero-width ramp
  std::vector<float> inv_freq(extrapolation.size());
  for (size_t i = 0; i < inv_freq.size(); i++) {
    // HF's pos_freqs = base ** (2i / dim), then 1 / pos and 1 / (factor * pos).
    const float pos = std::pow(c.theta, static_cast<float>(2 * i) / static_cast<float>(dim));
    const float ramp = std::clamp((static_cast<float>(i) - static_cast<float>(low)) / static_cast<float>(high - low), 0.0f, 1.0f);
    const float extrapolation_factor = 1.0f - ramp;
    inv_freq[i] = 1.0f / (c.factor * pos) * (1.0f - extrapolation_factor) + 1.0f / pos * extrapolation_factor;
  }
  return inv_freq;
}

}  // namespace

float rope_attention_factor(const RopeConfig& c) {
  if (c.factor <= 0.0f || c.type != RopeType::yarn) return 1.0f;
  if (c.attention_factor > 0.0f) return c.attention_factor;
  auto mscale = [&](double m) { return c.factor <= 1.0f ? 1.0 : 0.1 * m * std::log(static_cast<double>(c.factor)) + 1.0; };
  if (c.mscale > 0.0f && c.mscale_all_dim > 0.0f) return static_cast<float>(mscale(c.mscale) / mscale(c.mscale_all_dim));
  return static_cast<float>(mscale(1.0));
}

// As HF's _compute_llama3_parameters: wavelengths longer than original_max / low_freq_factor are
// slowed down by `factor`, shorter than original_max / high_freq_factor kept, and the band in
// between interpolated smoothly. Computed in f32 like HF, so positions * inv_freq match.
std::vector<float> rope_inv_freq(const RopeConfig& c, int head_dim) {
  LLM_CHECK(head_dim % 2 == 0, "rope: head_dim must be even, got " + std::to_string(head_dim));
  std::vector<float> inv_freq(head_dim / 2);
  for (int i = 0; i < head_dim / 2; i++)
    inv_freq[i] = 1.0f / std::pow(c.theta, static_cast<float>(2 * i) / static_cast<float>(head_dim));
  if (c.factor <= 0.0f || c.type == RopeType::dynamic) return inv_freq;
  if (c.type == RopeType::linear) {  // HF's _compute_linear_scaling_rope_parameters
    for (float& f : inv_freq) f /= c.factor;
    return inv_freq;
  }
  if (c.type == RopeType::yarn) return yarn_inv_freq(c, head_dim, inv_freq);
  const float old_len = static_cast<float>(c.original_max_position_embeddings);
  const float low_freq_wavelen = old_len / c.low_freq_factor;
  const float high_freq_wavelen = old_len / c.high_freq_factor;
  for (float& f : inv_freq) {
    float wavelen = 2.0f * static_cast<float>(M_PI) / f;
    if (wavelen > low_freq_wavelen) {
      f = f / c.factor;
    } else if (wavelen >= high_freq_wavelen) {
      float smooth = (old_len / wavelen - c.low_freq_factor) / (c.high_freq_factor - c.low_freq_factor);
      f = (1.0f - smooth) * f / c.factor + smooth * f;
    }
  }
  return inv_freq;
}

namespace {
// The inverse frequencies on a device, uploaded once per (device, config, head_dim): an upload
// per call would wait for the device twice per layer.
Tensor cached_inv_freq(const RopeConfig& c, int head_dim, Device device) {
  using Key = std::tuple<int, int, float, float, float, float, int, int, int, float, float, bool>;
  static std::mutex mutex;
  static std::map<Key, Tensor> cache;
  const Key key{static_cast<int>(device.type), device.index, c.theta, c.factor, c.low_freq_factor,
                c.high_freq_factor, c.original_max_position_embeddings, head_dim, static_cast<int>(c.type),
                c.beta_fast, c.beta_slow, c.truncate};
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  std::vector<float> freqs = rope_inv_freq(c, head_dim);
  Tensor t = Tensor::from_floats(freqs, {static_cast<int64_t>(freqs.size())}, device);
  cache.emplace(key, t);
  return t;
}
}  // namespace

Tensor rope(const Tensor& x_in, const Tensor& positions, const RopeConfig& config) {
  LLM_CHECK(x_in.dim() == 4, "rope expects x (B, S, H, D), got " + x_in.str());
  LLM_CHECK(positions.dtype() == DType::i32 && positions.dim() == 2 &&
                positions.size(0) == x_in.size(0) && positions.size(1) == x_in.size(1),
            "rope positions must be i32 (B, S) for " + x_in.str() + ", got " + positions.str());
  Tensor x = x_in.contiguous(), pos = positions.contiguous();
  Tensor inv_freq = cached_inv_freq(config, static_cast<int>(x.size(3)), x.device());
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend(x.device()).rope(x, pos, inv_freq, false, y);
  // YaRN's factor on cos and sin scales the rotation's output (and so its gradient) alike.
  const float scale = rope_attention_factor(config);
  if (scale != 1.0f) scale_(y, scale);
  if (any_requires_grad({x_in})) {
    record_node("rope", {x_in}, {&y}, [pos, inv_freq, scale](const Grads& g) -> Grads {
      Tensor dy = g[0].contiguous();
      Tensor dx = Tensor::empty(dy.shape(), dy.dtype(), dy.device());
      backend(dy.device()).rope(dy, pos, inv_freq, true, dx);  // a rotation's transpose is its inverse
      if (scale != 1.0f) scale_(dx, scale);
      return {dx};
    });
  }
  return y;
}

Tensor ssmax_scale(const Tensor& positions, float s, float b) {
  LLM_CHECK(positions.dtype() == DType::i32 && positions.dim() == 2, "ssmax_scale: positions must be i32 (B, S), got " + positions.str());
  Tensor pos = positions.contiguous();
  Tensor out = Tensor::empty({pos.numel()}, DType::f32, pos.device());
  backend(pos.device()).ssmax_scale(pos, s, b, out);
  return out;
}

}  // namespace llm
