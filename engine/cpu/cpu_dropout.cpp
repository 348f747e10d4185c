// defines: CPU dropout, add_uniform_noise (their draws from engine/counter_random.h)
#include "engine/cpu/cpu_backend.h"
#include "engine/counter_random.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::dropout(const Tensor& x, float p, uint64_t seed, Tensor& out) {
  require_f32("dropout", x);
  OpTimer timer("dropout");
  const float* in = x.data<float>();
  float* o = out.data<float>();
  const float scale = 1.0f / (1.0f - p);
  const int64_t n = x.numel();
#pragma omp parallel for
  for (int64_t i = 0; i < n; i++) o[i] = dropout_keep(seed, i, p) ? in[i] * scale : 0.0f;
}

void CpuBackend::add_uniform_noise(const Tensor& x, float magnitude, uint64_t seed, Tensor& out) {
  require_f32("add_uniform_noise", x);
  OpTimer timer("add_uniform_noise");
  const float* in = x.data<float>();
  float* o = out.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for
  for (int64_t i = 0; i < n; i++) o[i] = in[i] + magnitude * (2.0f * uniform01(seed, i) - 1.0f);
}

}  // namespace llm
