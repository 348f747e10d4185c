// defines: CudaBackend::schedule_free and lerp (engine/schedule_free_math.h, as the CPU)
#include "cuda/cuda_common.cuh"

namespace llm {

namespace {

template <class G>
__global__ void schedule_free_kernel(float* y, const G* grad, float* z, float* v, int64_t n, ScheduleFreeArgs args) {
  GRID_STRIDE_LOOP(i, n) y[i] = schedule_free_element(y[i], to_f32(grad[i]), z[i], v ? v + i : nullptr, args);
}

__global__ void lerp_kernel(float* a, const float* end, int64_t n, float weight) {
  GRID_STRIDE_LOOP(i, n) a[i] = torch_lerp(a[i], end[i], weight);
}

}  // namespace

void CudaBackend::schedule_free(Tensor& y, const Tensor& grad, Tensor& z, Tensor* v, const ScheduleFreeArgs& args) {
  LLM_CHECK(y.dtype() == DType::f32 && z.dtype() == DType::f32 && (!v || v->dtype() == DType::f32),
            "schedule_free on CUDA keeps f32 weights, z and v; got y " + y.str() + ", z " + z.str());
  LLM_CHECK(grad.numel() == y.numel() && z.numel() == y.numel() && (!v || v->numel() == y.numel()),
            "schedule_free: grad " + grad.str() + " and z " + z.str() + " for " + y.str());
  LLM_CHECK((v != nullptr) == args.second_moment, "schedule_free: v is given exactly when args.second_moment");
  const int64_t n = y.numel();
  if (n == 0) return;
  activate();
  float* pv = v ? v->data<float>() : nullptr;
  dispatch_float("schedule_free", grad, [&](auto tag) {
    using G = decltype(tag);
    schedule_free_kernel<<<grid_for(n), kThreads, 0, stream_>>>(y.data<float>(), grad.data<G>(), z.data<float>(), pv,
                                                                n, args);
  });
  CUDA_CHECK_OP("schedule_free", y, grad, z);
}

void CudaBackend::lerp(Tensor& a, const Tensor& end, float weight) {
  LLM_CHECK(a.dtype() == DType::f32 && end.dtype() == DType::f32 && end.numel() == a.numel(),
            "lerp on CUDA: f32 tensors of one size; got " + a.str() + " and " + end.str());
  const int64_t n = a.numel();
  if (n == 0) return;
  activate();
  lerp_kernel<<<grid_for(n), kThreads, 0, stream_>>>(a.data<float>(), end.data<float>(), n, weight);
  CUDA_CHECK_OP("lerp", a, end);
}

}  // namespace llm
