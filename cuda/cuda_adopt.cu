// defines: CudaBackend::adopt (one fused pass over f32 param, m, v; the grad f32 or bf16;
// cuda/fused_update.cuh)
#include "cuda/fused_update.cuh"

namespace llm {

namespace {

// ADOPT, as the CPU backend (engine/adopt_math.h).
struct AdoptUpdate {
  AdoptArgs args;
  __device__ float operator()(float p, float g, float* s) const { return adopt_element(p, g, s[0], s[1], args); }
};

}  // namespace

void CudaBackend::adopt(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdoptArgs& args) {
  LLM_CHECK(param.dtype() == DType::f32 && m.dtype() == DType::f32 && v.dtype() == DType::f32,
            "adopt on CUDA keeps f32 master weights and moments; got param " + param.str() + ", m " + m.str() +
                ", v " + v.str());
  LLM_CHECK(grad.numel() == param.numel() && m.numel() == param.numel() && v.numel() == param.numel(),
            "adopt: grad " + grad.str() + ", m " + m.str() + ", v " + v.str() + " for " + param.str());
  const int64_t n = param.numel();
  if (n == 0) return;
  activate();
  launch_fused_update<2>("adopt", stream_, param, grad, {{m.data<float>(), v.data<float>()}}, AdoptUpdate{args});
  CUDA_CHECK_OP("adopt", param, grad, m, v);
}

}  // namespace llm
