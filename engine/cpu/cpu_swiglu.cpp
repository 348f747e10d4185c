// defines: CPU swiglu forward/backward
#include <cmath>

#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"

namespace llm {

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
