// defines: CudaBackend::adopt (one fused pass over f32 param, m, v; the grad f32 or bf16)
#include "cuda/cuda_common.cuh"

namespace llm {

namespace {

// ADOPT, as the CPU backend (engine/adopt_math.h).
template <class G>
__global__ void adopt_kernel(float* param, const G* grad, float* m, float* v, int64_t n, AdoptArgs args) {
  GRID_STRIDE_LOOP(i, n) param[i] = adopt_element(param[i], to_f32(grad[i]), m[i], v[i], args);
}

}  // namespace

void CudaBackend::adopt(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdoptArgs& args) {
  LLM_CHECK(param.dtype() == DType::f32 && m.dtype() == DType::f32 && v.dtype() == DType::f32,
            "adopt on CUDA keeps f32 master weights and moments; got param " + param.str() + ", m " + m.str() +
                ", v " + v.str());
  LLM_CHECK(grad.numel() == param.numel(), "adopt: grad " + grad.str() + " for " + param.str());
  const int64_t n = param.numel();
  if (n == 0) return;
  activate();
  dispatch_float("adopt", grad, [&](auto tag) {
    using G = decltype(tag);
    adopt_kernel<<<grid_for(n), kThreads, 0, stream_>>>(param.data<float>(), grad.data<G>(), m.data<float>(),
                                                       v.data<float>(), n, args);
  });
  CUDA_CHECK_OP("adopt", param, grad, m, v);
}

}  // namespace llm
