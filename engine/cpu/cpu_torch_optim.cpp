// defines: CPU torch.optim SGD / Adagrad / RMSprop update and bitsandbytes' 8-bit RMSprop (the
// reference for the CUDA kernels)
#include "engine/cpu/blockwise_8bit.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::torch_optim(Tensor& param, const Tensor& grad, const std::array<Tensor*, 3>& state,
                             const TorchOptimArgs& args) {
  OpTimer timer("torch_optim");
  require_f32("torch_optim", param);
  require_f32("torch_optim", grad);
  const int64_t n = param.numel();
  LLM_CHECK(grad.numel() == n, "torch_optim: grad " + grad.str() + " for " + param.str());
  float* s[3] = {};
  for (int k = 0; k < 3; k++) {
    if (!state[k]) continue;
    require_f32("torch_optim", *state[k]);
    LLM_CHECK(state[k]->numel() == n, "torch_optim: state " + state[k]->str() + " for " + param.str());
    s[k] = state[k]->data<float>();
  }
  float* p = param.data<float>();
  const float* g = grad.data<float>();
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; i++) {
    float values[3] = {s[0] ? s[0][i] : 0.0f, s[1] ? s[1][i] : 0.0f, s[2] ? s[2][i] : 0.0f};
    p[i] = torch_optim_element(p[i], g[i], values, args);
    for (int k = 0; k < 3; k++)
      if (s[k]) s[k][i] = values[k];
  }
}

void CpuBackend::rmsprop_8bit(Tensor& param, const Tensor& grad, Tensor& codes, Tensor& absmax,
                              const TorchOptimArgs& args) {
  OpTimer timer("rmsprop_8bit");
  LLM_CHECK(args.kind == TorchOptimKind::rmsprop && args.momentum == 0.0f && !args.centered,
            "rmsprop_8bit: bitsandbytes' RMSprop keeps square_avg alone (no momentum, not centered)");
  update_blockwise_8bit<1>("rmsprop_8bit", param, grad, {{{&codes, &absmax, true}}},
                           [&args](float p, float g, float* square_avg) { return torch_optim_element(p, g, square_avg, args); });
}

}  // namespace llm
