// defines: CudaBackend::adamw (one fused pass over f32 param, m, v; the grad f32 or bf16; 4
// elements a thread where aligned)
#include "cuda/cuda_common.cuh"
#include "cuda/vec4.cuh"

namespace llm {

namespace {

// PyTorch's AdamW, as the CPU backend (engine/adamw_math.h).
template <class G>
__global__ void adamw_kernel(float* param, const G* grad, float* m, float* v, int64_t n,
                             AdamWArgs args) {
  GRID_STRIDE_LOOP(i, n) param[i] = adamw_element(param[i], to_f32(grad[i]), m[i], v[i], args);
}

// Every pointer aligned to its 4-element word (cuda/vec4.cuh): the same update, 4 at a time.
template <class G>
__global__ void adamw4_kernel(float* param, const G* grad, float* m, float* v, int64_t n,
                              AdamWArgs args) {
  GRID_STRIDE_LOOP(group, n / 4) {
    Vec4<float> p = load4(param, group), mm = load4(m, group), vv = load4(v, group);
    const Vec4<G> g = load4(grad, group);
    for (int j = 0; j < 4; j++) p.v[j] = adamw_element(p.v[j], to_f32(g.v[j]), mm.v[j], vv.v[j], args);
    store4(param, group, p);
    store4(m, group, mm);
    store4(v, group, vv);
  }
  if (const int64_t i = tail_of_4(n); i >= 0)
    param[i] = adamw_element(param[i], to_f32(grad[i]), m[i], v[i], args);
}

}  // namespace

void CudaBackend::adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                        const AdamWArgs& args) {
  LLM_CHECK(param.dtype() == DType::f32 && m.dtype() == DType::f32 && v.dtype() == DType::f32,
            "adamw on CUDA keeps f32 master weights and moments; got param " + param.str() +
                ", m " + m.str() + ", v " + v.str());
  LLM_CHECK(grad.numel() == param.numel(), "adamw: grad " + grad.str() + " for " + param.str());
  const int64_t n = param.numel();
  if (n == 0) return;
  activate();
  dispatch_float("adamw", grad, [&](auto tag) {
    using G = decltype(tag);
    float *p = param.data<float>(), *mp = m.data<float>(), *vp = v.data<float>();
    const G* g = grad.data<G>();
    if (aligned4<float>(p) && aligned4<float>(mp) && aligned4<float>(vp) && aligned4<G>(g))
      adamw4_kernel<<<grid_for_groups_of_4(n), kThreads, 0, stream_>>>(p, g, mp, vp, n, args);
    else
      adamw_kernel<<<grid_for(n), kThreads, 0, stream_>>>(p, g, mp, vp, n, args);
  });
  CUDA_CHECK_OP("adamw", param, grad, m, v);
}

}  // namespace llm
