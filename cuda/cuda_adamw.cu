// defines: CudaBackend::adamw (one fused pass over f32 param, m, v; the grad f32 or bf16)
#include "cuda/cuda_common.cuh"

namespace llm {

namespace {

// PyTorch's AdamW, as the CPU backend (engine/adamw_math.h).
template <class G>
__global__ void adamw_kernel(float* param, const G* grad, float* m, float* v, int64_t n,
                             AdamWArgs args) {
  GRID_STRIDE_LOOP(i, n) param[i] = adamw_element(param[i], to_f32(grad[i]), m[i], v[i], args);
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
    adamw_kernel<<<grid_for(n), kThreads, 0, stream_>>>(
        param.data<float>(), grad.data<G>(), m.data<float>(), v.data<float>(), n, args);
  });
  CUDA_CHECK_OP("adamw", param, grad, m, v);
}

}  // namespace llm
