// defines: CudaBackend::adamw (one fused pass over f32 param, m, v; the grad f32 or bf16; 4
// elements a thread where aligned)
#include "cuda/cuda_common.cuh"
#include "cuda/vec4.cuh"

namespace llm {

namespace {

// PyTorch's AdamW, as the CPU backend (engine/adamw_math.h). W = 4: every pointer on its
// 4-element word (cuda/vec4.cuh), the same update 4 at a time; W = 1 element-wise.
template <class G, int W>
__global__ void adamw_kernel(float* param, const G* grad, float* m, float* v, int64_t n,
                             AdamWArgs args) {
  for_each_vec<W>(n, [&](auto width, int64_t unit) {
    constexpr int K = decltype(width)::value;
    VecN<float, K> p = load_vec<K>(param, unit), mm = load_vec<K>(m, unit), vv = load_vec<K>(v, unit);
    const VecN<G, K> g = load_vec<K>(grad, unit);
    for (int j = 0; j < K; j++) p.v[j] = adamw_element(p.v[j], to_f32(g.v[j]), mm.v[j], vv.v[j], args);
    store_vec<K>(param, unit, p);
    store_vec<K>(m, unit, mm);
    store_vec<K>(v, unit, vv);
  });
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
    const bool aligned = aligned4<float>(p) && aligned4<float>(mp) && aligned4<float>(vp) && aligned4<G>(g);
    launch_vec(n, aligned, [&](auto width, unsigned blocks) {
      adamw_kernel<G, width()><<<blocks, kThreads, 0, stream_>>>(p, g, mp, vp, n, args);
    });
  });
  CUDA_CHECK_OP("adamw", param, grad, m, v);
}

}  // namespace llm
