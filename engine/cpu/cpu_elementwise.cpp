// defines: CPU axpby, mul, scale, sum, sum_squares, swiglu forward/backward
#include <cmath>

#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::axpby(float a, const Tensor& x, float b, const Tensor& y, Tensor& out) {
  require_f32("axpby", x);
  OpTimer timer("elementwise");
  const float* px = x.data<float>();
  const float* py = y.data<float>();
  float* po = out.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for
  for (int64_t i = 0; i < n; i++) po[i] = a * px[i] + b * py[i];
}

void CpuBackend::mul(const Tensor& x, const Tensor& y, Tensor& out) {
  require_f32("mul", x);
  OpTimer timer("elementwise");
  const float* px = x.data<float>();
  const float* py = y.data<float>();
  float* po = out.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for
  for (int64_t i = 0; i < n; i++) po[i] = px[i] * py[i];
}

void CpuBackend::scale(Tensor& x, float s) {
  require_f32("scale", x);
  float* p = x.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for
  for (int64_t i = 0; i < n; i++) p[i] *= s;
}

// Reductions run serially in f64 so their result does not depend on the thread count.
void CpuBackend::sum(const Tensor& x, Tensor& out) {
  require_f32("sum", x);
  const float* p = x.data<float>();
  double acc = 0.0;
  for (int64_t i = 0; i < x.numel(); i++) acc += p[i];
  out.data<float>()[0] = static_cast<float>(acc);
}

double CpuBackend::sum_squares(const Tensor& x) {
  require_f32("sum_squares", x);
  const float* p = x.data<float>();
  double acc = 0.0;
  for (int64_t i = 0; i < x.numel(); i++) acc += static_cast<double>(p[i]) * p[i];
  return acc;
}

static inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

void CpuBackend::swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  require_f32("swiglu", gate);
  OpTimer timer("swiglu");
  const float* g = gate.data<float>();
  const float* u = up.data<float>();
  float* o = out.data<float>();
  const int64_t n = gate.numel();
#pragma omp parallel for
  for (int64_t i = 0; i < n; i++) o[i] = g[i] * sigmoid(g[i]) * u[i];
}

// d silu(g)/dg = sig(g) * (1 + g * (1 - sig(g))).
void CpuBackend::swiglu_backward(const Tensor& gate, const Tensor& up, const Tensor& dout,
                                 Tensor& dgate, Tensor& dup) {
  require_f32("swiglu_backward", gate);
  OpTimer timer("swiglu");
  const float* g = gate.data<float>();
  const float* u = up.data<float>();
  const float* d = dout.data<float>();
  float* dg = dgate.data<float>();
  float* du = dup.data<float>();
  const int64_t n = gate.numel();
#pragma omp parallel for
  for (int64_t i = 0; i < n; i++) {
    float s = sigmoid(g[i]);
    du[i] = d[i] * g[i] * s;
    dg[i] = d[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
  }
}

}  // namespace llm
