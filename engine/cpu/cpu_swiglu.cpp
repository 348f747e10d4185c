// defines: CPU swiglu forward/backward
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_simd_math.h"
#include "engine/op_timer.h"

namespace llm {

namespace {
// The loops live in free functions: LLM_CPU_CLONES cannot mark a virtual member.
LLM_CPU_CLONES void swiglu_loop(const float* g, const float* u, float* o, int64_t n) {
#pragma omp parallel for
  for (int64_t i = 0; i < n; i++) o[i] = g[i] * fast_sigmoid(g[i]) * u[i];
}

// d silu(g)/dg = sig(g) * (1 + g * (1 - sig(g))).
LLM_CPU_CLONES void swiglu_backward_loop(const float* g, const float* u, const float* d, float* dg,
                                         float* du, int64_t n) {
#pragma omp parallel for
  for (int64_t i = 0; i < n; i++) {
    const float s = fast_sigmoid(g[i]);
    du[i] = d[i] * g[i] * s;
    dg[i] = d[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
  }
}
}  // namespace

void CpuBackend::swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  require_f32("swiglu", gate);
  OpTimer timer("swiglu");
  swiglu_loop(gate.data<float>(), up.data<float>(), out.data<float>(), gate.numel());
}

void CpuBackend::swiglu_backward(const Tensor& gate, const Tensor& up, const Tensor& dout,
                                 Tensor& dgate, Tensor& dup) {
  require_f32("swiglu_backward", gate);
  OpTimer timer("swiglu_backward");
  swiglu_backward_loop(gate.data<float>(), up.data<float>(), dout.data<float>(),
                       dgate.data<float>(), dup.data<float>(), gate.numel());
}

}  // namespace llm
