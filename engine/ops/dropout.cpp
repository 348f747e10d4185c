// defines: dropout (inverted dropout with a seeded, recomputable mask) and add_uniform_noise
// (NEFTune's), forward and backward
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops.h"

namespace llm {

Tensor dropout(const Tensor& x_in, float p, uint64_t seed) {
  LLM_CHECK(p >= 0.0f && p < 1.0f, "dropout: p must lie in [0, 1), got " + std::to_string(p));
  if (p == 0.0f) return x_in;
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend(x.device()).dropout(x, p, seed, out);
  if (any_requires_grad({x_in})) {
    // The same mask and scale on the gradient: d(keep * x / (1 - p)) = keep / (1 - p).
    record_node("dropout", {x_in}, {&out}, [p, seed](const Grads& g) -> Grads {
      Tensor dout = g[0].contiguous();
      Tensor dx = Tensor::empty(dout.shape(), dout.dtype(), dout.device());
      backend(dout.device()).dropout(dout, p, seed, dx);
      return {dx};
    });
  }
  return out;
}

Tensor add_uniform_noise(const Tensor& x_in, float magnitude, uint64_t seed) {
  LLM_CHECK(magnitude >= 0.0f, "add_uniform_noise: magnitude must be >= 0, got " + std::to_string(magnitude));
  if (magnitude == 0.0f) return x_in;
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend(x.device()).add_uniform_noise(x, magnitude, seed, out);
  // The noise is a constant added: the gradient passes through unchanged.
  if (any_requires_grad({x_in}))
    record_node("add_uniform_noise", {x_in}, {&out}, [](const Grads& g) -> Grads { return {g[0]}; });
  return out;
}

}  // namespace llm
