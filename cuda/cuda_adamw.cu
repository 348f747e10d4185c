// defines: CudaBackend::adamw (one fused pass over f32 param, m, v; the grad f32 or bf16)
#include "cuda/cuda_common.cuh"

namespace llm {

namespace {

// PyTorch's AdamW, as the CPU backend: decoupled decay first, then the bias-corrected step.
template <class G>
__global__ void adamw_kernel(float* param, const G* grad, float* m, float* v, int64_t n,
                             float lr, float beta1, float beta2, float eps, float weight_decay,
                             float step_size, float bias2_sqrt) {
  GRID_STRIDE_LOOP(i, n) {
    const float g = to_f32(grad[i]);
    float p = param[i] * (1.0f - lr * weight_decay);
    const float mi = beta1 * m[i] + (1.0f - beta1) * g;
    const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    p -= step_size * mi / (sqrtf(vi) / bias2_sqrt + eps);
    param[i] = p;
    m[i] = mi;
    v[i] = vi;
  }
}

}  // namespace

void CudaBackend::adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, float lr,
                        float beta1, float beta2, float eps, float weight_decay, float step_size,
                        float bias2_sqrt) {
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
        param.data<float>(), grad.data<G>(), m.data<float>(), v.data<float>(), n, lr, beta1,
        beta2, eps, weight_decay, step_size, bias2_sqrt);
  });
  CUDA_CHECK_OP("adamw", param, grad, m, v);
}

}  // namespace llm
