// defines: CudaBackend::adamw (one fused pass over param, m, v: f32, or bf16 under `bfloat16:
// true`; the grad f32 or bf16; 4 or 8 elements a thread where aligned)
#include "cuda/cuda_common.cuh"
#include "cuda/vec.cuh"

namespace llm {

namespace {

// PyTorch's AdamW, as the CPU backend (engine/adamw_math.h), each element in f32: a bf16 param
// and its moments are read into f32 and rounded back once, as torch's fused AdamW keeps a bf16
// model. W = 4 (f32 state) or 8 (bf16): every pointer on its W-element word (cuda/vec.cuh), the
// same update W at a time; W = 1 element-wise.
template <class P, class G, int W>
__global__ void adamw_kernel(P* param, const G* grad, P* m, P* v, int64_t n, AdamWArgs args) {
  for_each_vec<W>(n, [&](auto width, int64_t unit) {
    constexpr int K = decltype(width)::value;
    VecN<P, K> p = load_vec<K>(param, unit), mm = load_vec<K>(m, unit), vv = load_vec<K>(v, unit);
    const VecN<G, K> g = load_vec<K>(grad, unit);
    for (int j = 0; j < K; j++) {
      float m1 = to_f32(mm.v[j]), v1 = to_f32(vv.v[j]);
      p.v[j] = from_f32<P>(adamw_element(to_f32(p.v[j]), to_f32(g.v[j]), m1, v1, args));
      mm.v[j] = from_f32<P>(m1);
      vv.v[j] = from_f32<P>(v1);
    }
    store_vec<K>(param, unit, p);
    store_vec<K>(m, unit, mm);
    store_vec<K>(v, unit, vv);
  });
}

}  // namespace

void CudaBackend::adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                        const AdamWArgs& args) {
  LLM_CHECK((param.dtype() == DType::f32 || param.dtype() == DType::bf16) && m.dtype() == param.dtype() &&
                v.dtype() == param.dtype(),
            "adamw on CUDA keeps f32 (or bf16) param and moments of one dtype; got param " + param.str() +
                ", m " + m.str() + ", v " + v.str());
  LLM_CHECK(grad.numel() == param.numel(), "adamw: grad " + grad.str() + " for " + param.str());
  const int64_t n = param.numel();
  if (n == 0) return;
  activate();
  dispatch_float("adamw", param, [&](auto param_tag) {
    using P = decltype(param_tag);
    dispatch_float("adamw", grad, [&](auto grad_tag) {
      using G = decltype(grad_tag);
      P *p = param.data<P>(), *mp = m.data<P>(), *vp = v.data<P>();
      const G* g = grad.data<G>();
      launch_vec(n, [&](auto width, unsigned blocks) {
        adamw_kernel<P, G, width()><<<blocks, kThreads, 0, stream_>>>(p, g, mp, vp, n, args);
      }, p, mp, vp, g);
    });
  });
  CUDA_CHECK_OP("adamw", param, grad, m, v);
}

}  // namespace llm
