// defines: CudaBackend::ademamix and ademamix_8bit (engine/ademamix_math.h; f32 or blockwise 8-bit
// moments, as the CPU)
#include "cuda/blockwise_8bit.cuh"
#include "cuda/fused_update.cuh"

namespace llm {

namespace {

struct AdemamixUpdate {
  AdemamixArgs args;
  __device__ float operator()(float p, float g, float* m) const { return ademamix_element(p, g, m[0], m[1], m[2], args); }
};

}  // namespace

void CudaBackend::ademamix(Tensor& param, const Tensor& grad, Tensor& m1, Tensor& m2, Tensor& nu,
                           const AdemamixArgs& args) {
  const int64_t n = param.numel();
  LLM_CHECK(param.dtype() == DType::f32 && m1.dtype() == DType::f32 && m2.dtype() == DType::f32 &&
                nu.dtype() == DType::f32,
            "ademamix on CUDA keeps f32 master weights and moments; got param " + param.str() + ", m1 " + m1.str());
  LLM_CHECK(grad.numel() == n && m1.numel() == n && m2.numel() == n && nu.numel() == n,
            "ademamix: grad " + grad.str() + " and moments " + m1.str() + " for " + param.str());
  if (n == 0) return;
  activate();
  launch_fused_update<3>("ademamix", stream_, param, grad, {{m1.data<float>(), m2.data<float>(), nu.data<float>()}},
                         AdemamixUpdate{args});
  CUDA_CHECK_OP("ademamix", param, grad, m1, m2, nu);
}

void CudaBackend::ademamix_8bit(Tensor& param, const Tensor& grad, Tensor& m1_codes, Tensor& m1_absmax,
                                Tensor& m2_codes, Tensor& m2_absmax, Tensor& nu_codes, Tensor& nu_absmax,
                                const AdemamixArgs& args) {
  activate();
  launch_blockwise_8bit<3>("ademamix_8bit", stream_, param, grad,
                           {{{&m1_codes, &m1_absmax}, {&m2_codes, &m2_absmax}, {&nu_codes, &nu_absmax}}},
                           {true, true, false}, AdemamixUpdate{args});
  CUDA_CHECK_OP("ademamix_8bit", param, grad, m1_codes, m2_codes, nu_codes);
}

}  // namespace llm
