// defines: CudaBackend::torch_optim (torch.optim's SGD, Adagrad and RMSprop in one fused pass; the CPU's algorithm)
// and rmsprop_8bit (bitsandbytes' 8-bit RMSprop, as the CPU's)
#include "cuda/blockwise_8bit.cuh"
#include "cuda/fused_update.cuh"

namespace llm {

namespace {

// s as torch_optim_element's state (engine/torch_optim_math.h): all three in the f32 pass, a state
// it does not keep read as 0; RMSprop's square_avg alone in the 8-bit one.
struct TorchOptimUpdate {
  TorchOptimArgs args;
  __device__ float operator()(float p, float g, float* s) const { return torch_optim_element(p, g, s, args); }
};

}  // namespace

void CudaBackend::torch_optim(Tensor& param, const Tensor& grad, const std::array<Tensor*, 3>& state,
                              const TorchOptimArgs& args) {
  LLM_CHECK(param.dtype() == DType::f32, "torch_optim on CUDA keeps f32 master weights; got " + param.str());
  const int64_t n = param.numel();
  LLM_CHECK(grad.numel() == n, "torch_optim: grad " + grad.str() + " for " + param.str());
  float* s[3] = {};
  for (int k = 0; k < 3; k++) {
    if (!state[k]) continue;
    LLM_CHECK(state[k]->dtype() == DType::f32 && state[k]->numel() == n,
              "torch_optim: state " + state[k]->str() + " for " + param.str());
    s[k] = state[k]->data<float>();
  }
  if (n == 0) return;
  activate();
  launch_fused_update<3>("torch_optim", stream_, param, grad, {{s[0], s[1], s[2]}}, TorchOptimUpdate{args});
  CUDA_CHECK_OP("torch_optim", param, grad);
}

void CudaBackend::rmsprop_8bit(Tensor& param, const Tensor& grad, Tensor& codes, Tensor& absmax,
                               const TorchOptimArgs& args) {
  LLM_CHECK(args.kind == TorchOptimKind::rmsprop && args.momentum == 0.0f && !args.centered,
            "rmsprop_8bit: bitsandbytes' RMSprop keeps square_avg alone (no momentum, not centered)");
  activate();
  launch_blockwise_8bit<1>("rmsprop_8bit", stream_, param, grad, {{{&codes, &absmax}}}, {true}, TorchOptimUpdate{args});
  CUDA_CHECK_OP("rmsprop_8bit", param, grad, codes);
}

}  // namespace llm
