// defines: CudaBackend::schedule_free and lerp (engine/schedule_free_math.h, as the CPU; a 16-byte
// word a load where aligned, cuda/fused_update.cuh)
#include "cuda/fused_update.cuh"

namespace llm {

namespace {

// s: z, then v (without the second moment none: its 0 is never read).
struct ScheduleFreeUpdate {
  ScheduleFreeArgs args;
  __device__ float operator()(float y, float g, float* s) const {
    return schedule_free_element(y, g, s[0], args.second_moment ? &s[1] : nullptr, args);
  }
};

template <int W>
__global__ void lerp_kernel(float* a, const float* end, int64_t n, float weight) {
  for_each_vec<W>(n, [&](auto width, int64_t unit) {
    constexpr int K = decltype(width)::value;
    const VecN<float, K> e = load_vec<K>(end, unit);
    map_unit<K>(a, a, unit, [&](float x, int j) { return torch_lerp(x, e.v[j], weight); });
  });
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
  launch_fused_update<2>("schedule_free", stream_, y, grad, {{z.data<float>(), pv}}, ScheduleFreeUpdate{args});
  CUDA_CHECK_OP("schedule_free", y, grad, z);
}

void CudaBackend::lerp(Tensor& a, const Tensor& end, float weight) {
  LLM_CHECK(a.dtype() == DType::f32 && end.dtype() == DType::f32 && end.numel() == a.numel(),
            "lerp on CUDA: f32 tensors of one size; got " + a.str() + " and " + end.str());
  const int64_t n = a.numel();
  if (n == 0) return;
  activate();
  float* ap = a.data<float>();
  const float* ep = end.data<float>();
  launch_vec(n, [&](auto width, unsigned blocks) {
    lerp_kernel<width()><<<blocks, kThreads, 0, stream_>>>(ap, ep, n, weight);
  }, ap, ep);
  CUDA_CHECK_OP("lerp", a, end);
}

}  // namespace llm
