// defines: CPU torch.optim SGD / Adagrad / RMSprop update (the reference for the CUDA kernel)
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

}  // namespace llm
