// defines: CudaBackend::ademamix and ademamix_8bit (engine/ademamix_math.h; f32 or blockwise 8-bit
// moments, as the CPU)
#include "cuda/blockwise_8bit.cuh"

namespace llm {

namespace {

template <class G>
__global__ void ademamix_kernel(float* param, const G* grad, float* m1, float* m2, float* nu, int64_t n,
                                AdemamixArgs args) {
  GRID_STRIDE_LOOP(i, n) param[i] = ademamix_element(param[i], to_f32(grad[i]), m1[i], m2[i], nu[i], args);
}

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
  dispatch_float("ademamix", grad, [&](auto tag) {
    using G = decltype(tag);
    ademamix_kernel<<<grid_for(n), kThreads, 0, stream_>>>(param.data<float>(), grad.data<G>(), m1.data<float>(),
                                                           m2.data<float>(), nu.data<float>(), n, args);
  });
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
