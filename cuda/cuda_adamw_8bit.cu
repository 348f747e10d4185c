// defines: CudaBackend::adamw_8bit (bitsandbytes' blockwise 8-bit AdamW; the CPU's algorithm)
#include "cuda/blockwise_8bit.cuh"

namespace llm {

namespace {

struct AdamWUpdate {
  AdamWArgs args;
  __device__ float operator()(float p, float g, float* m) const { return adamw_element(p, g, m[0], m[1], args); }
};

}  // namespace

void CudaBackend::adamw_8bit(Tensor& param, const Tensor& grad, Tensor& m_codes, Tensor& m_absmax,
                             Tensor& v_codes, Tensor& v_absmax, const AdamWArgs& args) {
  activate();
  launch_blockwise_8bit<2>("adamw_8bit", stream_, param, grad, {{{&m_codes, &m_absmax}, {&v_codes, &v_absmax}}},
                           {true, false}, AdamWUpdate{args});
  CUDA_CHECK_OP("adamw_8bit", param, grad, m_codes, v_codes);
}

}  // namespace llm
