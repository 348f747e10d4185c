// defines: rope_inv_freq (with Llama 3 frequency scaling), rope (backward = inverse rotation),
// ssmax_scale (SSMax's per-query factors from the same positions)
#include <cmath>
#include <map>
#include <mutex>
#include <tuple>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

// As HF's _compute_llama3_parameters: wavelengths longer than original_max / low_freq_factor are
// slowed down by `factor`, shorter than original_max / high_freq_factor kept, and the band in
// between interpolated smoothly. Computed in f32 like HF, so positions * inv_freq match.
std::vector<float> rope_inv_freq(const RopeConfig& c, int head_dim) {
  LLM_CHECK(head_dim % 2 == 0, "rope: head_dim must be even, got " + std::to_string(head_dim));
  std::vector<float> inv_freq(head_dim / 2);
  for (int i = 0; i < head_dim / 2; i++)
    inv_freq[i] = 1.0f / std::pow(c.theta, static_cast<float>(2 * i) / static_cast<float>(head_dim));
  if (c.factor <= 0.0f) return inv_freq;
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
  using Key = std::tuple<int, int, float, float, float, float, int, int>;
  static std::mutex mutex;
  static std::map<Key, Tensor> cache;
  const Key key{static_cast<int>(device.type), device.index, c.theta, c.factor, c.low_freq_factor,
                c.high_freq_factor, c.original_max_position_embeddings, head_dim};
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
  if (any_requires_grad({x_in})) {
    record_node("rope", {x_in}, {&y}, [pos, inv_freq](const Grads& g) -> Grads {
      Tensor dy = g[0].contiguous();
      Tensor dx = Tensor::empty(dy.shape(), dy.dtype(), dy.device());
      backend(dy.device()).rope(dy, pos, inv_freq, true, dx);  // a rotation's transpose is its inverse
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
