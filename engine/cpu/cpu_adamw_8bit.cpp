// defines: CPU 8-bit blockwise AdamW (bitsandbytes' algorithm; the reference for the CUDA kernel)
#include "engine/cpu/blockwise_8bit.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::adamw_8bit(Tensor& param, const Tensor& grad, Tensor& m_codes, Tensor& m_absmax,
                            Tensor& v_codes, Tensor& v_absmax, const AdamWArgs& args) {
  OpTimer timer("adamw_8bit");
  update_blockwise_8bit<2>("adamw_8bit", param, grad, {{{&m_codes, &m_absmax, true}, {&v_codes, &v_absmax, false}}},
                           [&args](float p, float g, float* m) { return adamw_element(p, g, m[0], m[1], args); });
}

}  // namespace llm
