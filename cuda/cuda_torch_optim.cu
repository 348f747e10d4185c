// defines: CudaBackend::torch_optim (torch.optim's SGD, Adagrad and RMSprop in one fused pass; the CPU's algorithm)
// and rmsprop_8bit (bitsandbytes' 8-bit RMSprop, as the CPU's)
#include "cuda/blockwise_8bit.cuh"

namespace llm {

namespace {

// s0..s2 as torch_optim_element's state, nullptr where unused (engine/torch_optim_math.h).
template <class G>
__global__ void torch_optim_kernel(float* param, const G* grad, float* s0, float* s1, float* s2, int64_t n,
                                   TorchOptimArgs args) {
  GRID_STRIDE_LOOP(i, n) {
    float s[3] = {s0 ? s0[i] : 0.0f, s1 ? s1[i] : 0.0f, s2 ? s2[i] : 0.0f};
    param[i] = torch_optim_element(param[i], to_f32(grad[i]), s, args);
    if (s0) s0[i] = s[0];
    if (s1) s1[i] = s[1];
    if (s2) s2[i] = s[2];
  }
}

struct RmspropUpdate {
  TorchOptimArgs args;
  __device__ float operator()(float p, float g, float* square_avg) const { return torch_optim_element(p, g, square_avg, args); }
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
  dispatch_float("torch_optim", grad, [&](auto tag) {
    using G = decltype(tag);
    torch_optim_kernel<<<grid_for(n), kThreads, 0, stream_>>>(param.data<float>(), grad.data<G>(), s[0], s[1], s[2], n,
                                                              args);
  });
  CUDA_CHECK_OP("torch_optim", param, grad);
}

void CudaBackend::rmsprop_8bit(Tensor& param, const Tensor& grad, Tensor& codes, Tensor& absmax,
                               const TorchOptimArgs& args) {
  LLM_CHECK(args.kind == TorchOptimKind::rmsprop && args.momentum == 0.0f && !args.centered,
            "rmsprop_8bit: bitsandbytes' RMSprop keeps square_avg alone (no momentum, not centered)");
  activate();
  launch_blockwise_8bit<1>("rmsprop_8bit", stream_, param, grad, {{{&codes, &absmax}}}, {true}, RmspropUpdate{args});
  CUDA_CHECK_OP("rmsprop_8bit", param, grad, codes);
}

}  // namespace llm
