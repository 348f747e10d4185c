// defines: CPU torchao AdamW update, f32 or 8-bit, 4-bit or fp8 blockwise moments (the reference for the CUDA kernel)
#include "engine/cpu/blockwise_8bit.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::torchao_adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& m_scale, Tensor& v,
                               Tensor& v_scale, const TorchaoAdamWArgs& args) {
  OpTimer timer("torchao_adamw");
  auto update = [&args](float p, float g, float& m1, float& v1) { return torchao_adamw_element(p, g, m1, v1, args); };
  if (!m_scale.defined()) {
    update_param_and_moments("torchao_adamw", param, grad, m, v, update);
    return;
  }
  const std::array<QuantMoment, 2> moments{{{&m, &m_scale, true}, {&v, &v_scale, false}}};
  auto quantised_update = [&update](float p, float g, float* mv) { return update(p, g, mv[0], mv[1]); };
  switch (args.codes) {
    case TorchaoCodes::dynamic_8bit:
      update_blockwise_8bit<2, TorchaoBlockQuant<8>>("torchao_adamw", param, grad, moments, quantised_update);
      break;
    case TorchaoCodes::dynamic_4bit:
      update_blockwise_8bit<2, TorchaoBlockQuant<4>>("torchao_adamw", param, grad, moments, quantised_update);
      break;
    case TorchaoCodes::fp8:
      update_blockwise_8bit<2, TorchaoFp8BlockQuant>("torchao_adamw", param, grad, moments, quantised_update);
      break;
  }
}

}  // namespace llm
