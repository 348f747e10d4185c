// defines: CPU Schedule-Free update and lerp (the reference for the CUDA kernels)
#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::schedule_free(Tensor& y, const Tensor& grad, Tensor& z, Tensor* v, const ScheduleFreeArgs& args) {
  OpTimer timer("schedule_free");
  require_f32("schedule_free", y);
  require_f32("schedule_free", grad);
  require_f32("schedule_free", z);
  LLM_CHECK(grad.numel() == y.numel() && z.numel() == y.numel(),
            "schedule_free: grad " + grad.str() + " and z " + z.str() + " for " + y.str());
  LLM_CHECK((v != nullptr) == args.second_moment, "schedule_free: v is given exactly when args.second_moment");
  if (v) {
    require_f32("schedule_free", *v);
    LLM_CHECK(v->numel() == y.numel(), "schedule_free: v " + v->str() + " for " + y.str());
  }
  float* py = y.data<float>();
  float* pz = z.data<float>();
  float* pv = v ? v->data<float>() : nullptr;
  const float* g = grad.data<float>();
  const int64_t n = y.numel();
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; i++) py[i] = schedule_free_element(py[i], g[i], pz[i], pv ? pv + i : nullptr, args);
}

void CpuBackend::lerp(Tensor& a, const Tensor& end, float weight) {
  OpTimer timer("lerp");
  require_f32("lerp", a);
  require_f32("lerp", end);
  LLM_CHECK(end.numel() == a.numel(), "lerp: end " + end.str() + " for " + a.str());
  float* pa = a.data<float>();
  const float* pe = end.data<float>();
  const int64_t n = a.numel();
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; i++) pa[i] = torch_lerp(pa[i], pe[i], weight);
}

}  // namespace llm
