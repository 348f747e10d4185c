// defines: CudaBackend::lion and lion_8bit (engine/lion_math.h; f32 or blockwise 8-bit m, as the CPU)
#include "cuda/blockwise_8bit.cuh"
#include "cuda/fused_update.cuh"

namespace llm {

namespace {

struct LionUpdate {
  LionArgs args;
  __device__ float operator()(float p, float g, float* m) const { return lion_element(p, g, m[0], args); }
};

}  // namespace

void CudaBackend::lion(Tensor& param, const Tensor& grad, Tensor& m, const LionArgs& args) {
  LLM_CHECK(param.dtype() == DType::f32 && m.dtype() == DType::f32,
            "lion on CUDA keeps f32 master weights and momentum; got param " + param.str() + ", m " + m.str());
  LLM_CHECK(grad.numel() == param.numel() && m.numel() == param.numel(),
            "lion: grad " + grad.str() + " and m " + m.str() + " for " + param.str());
  const int64_t n = param.numel();
  if (n == 0) return;
  activate();
  launch_fused_update<1>("lion", stream_, param, grad, {{m.data<float>()}}, LionUpdate{args});
  CUDA_CHECK_OP("lion", param, grad, m);
}

void CudaBackend::lion_8bit(Tensor& param, const Tensor& grad, Tensor& m_codes, Tensor& m_absmax,
                            const LionArgs& args) {
  activate();
  launch_blockwise_8bit<1>("lion_8bit", stream_, param, grad, {{{&m_codes, &m_absmax}}}, {true}, LionUpdate{args});
  CUDA_CHECK_OP("lion_8bit", param, grad, m_codes);
}

}  // namespace llm
