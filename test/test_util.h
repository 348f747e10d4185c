// Shared by the tests: random tensors and the finite-difference gradient check.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/tensor.h"

namespace llm::testing {

inline std::mt19937& rng() {
  static std::mt19937 gen(1234);
  return gen;
}

inline Tensor randn(const Shape& shape, float stddev = 1.0f) {
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(shape_numel(shape));
  for (float& x : v) x = dist(rng());
  return Tensor::from_floats(v, shape);
}

inline Tensor randint(const Shape& shape, int lo, int hi) {  // [lo, hi)
  std::uniform_int_distribution<int> dist(lo, hi - 1);
  std::vector<int32_t> v(shape_numel(shape));
  for (int32_t& x : v) x = dist(rng());
  return Tensor::from_ints(v, shape);
}

// A random batch for a model of vocabulary V: ids and positions (B, S), targets (B*S).
struct TokenBatch {
  Tensor ids, targets, positions;
};
inline TokenBatch random_batch(int64_t B, int64_t S, int64_t V) {
  std::vector<int32_t> pos(B * S);
  for (int64_t i = 0; i < B * S; i++) pos[i] = static_cast<int32_t>(i % S);
  return {randint({B, S}, 0, int(V)), randint({B * S}, 0, int(V)), Tensor::from_ints(pos, {B, S})};
}

inline float max_abs(const Tensor& t) {
  float m = 0.0f;
  for (float x : t.to_floats()) m = std::max(m, std::fabs(x));
  return m;
}

inline float max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  std::vector<float> x = a.to_floats(), y = b.to_floats();
  float m = 0.0f;
  for (size_t i = 0; i < x.size(); i++) m = std::max(m, std::fabs(x[i] - y[i]));
  return m;
}

// Tolerances for central differences in f32: eps = 1e-2 keeps truncation error near 1e-4 for
// these smooth ops while round-off in the loss stays near 1e-5.
struct GradCheckOptions {
  float eps = 1e-2f;
  float atol = 2e-3f;
  float rtol = 2e-2f;
  int samples = 24;  // elements checked per input (all of them when the input is smaller)
};

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// L = sum(f(inputs) * R) with a fixed random R, accumulated in f64 on the host.
inline double weighted_sum(const Tensor& out, const std::vector<float>& r) {
  std::vector<float> o = out.to_floats();
  double acc = 0.0;
  for (size_t i = 0; i < o.size(); i++) acc += static_cast<double>(o[i]) * r[i];
  return acc;
}

// Checks the analytic gradient of every f32 input of f against central differences.
inline void check_gradients(const Fn& f, std::vector<Tensor> inputs,
                            const GradCheckOptions& opt = {}) {
  for (Tensor& t : inputs)
    if (t.dtype() == DType::f32) t.set_requires_grad(true);
  Tensor out = f(inputs);
  Tensor r = randn(out.shape());
  std::vector<float> rv = r.to_floats();
  backward(out, r);
  for (size_t i = 0; i < inputs.size(); i++) {
    if (inputs[i].dtype() != DType::f32) continue;
    Tensor grad = inputs[i].grad();
    REQUIRE_MESSAGE(grad.defined(), "input " << i << " got no gradient");
    std::vector<float> analytic = grad.to_floats();
    float* data = inputs[i].data<float>();
    const int64_t n = inputs[i].numel();
    std::vector<int64_t> picks;
    if (n <= opt.samples) {
      for (int64_t j = 0; j < n; j++) picks.push_back(j);
    } else {
      std::uniform_int_distribution<int64_t> dist(0, n - 1);
      for (int s = 0; s < opt.samples; s++) picks.push_back(dist(rng()));
    }
    NoGradGuard no_grad;
    for (int64_t j : picks) {
      float saved = data[j];
      data[j] = saved + opt.eps;
      double plus = weighted_sum(f(inputs), rv);
      data[j] = saved - opt.eps;
      double minus = weighted_sum(f(inputs), rv);
      data[j] = saved;
      double numeric = (plus - minus) / (2.0 * opt.eps);
      double err = std::fabs(numeric - analytic[j]);
      INFO("input " << i << " element " << j << ": analytic " << analytic[j] << " numeric "
                    << numeric);
      CHECK(err <= opt.atol + opt.rtol * std::fabs(numeric));
    }
  }
}

}  // namespace llm::testing
