// defines: CudaBackend::torchao_adamw (torchao's AdamW, f32 or 8-bit, 4-bit or fp8 blockwise moments; the CPU's algorithm)
#include "cuda/blockwise_8bit.cuh"

namespace llm {

namespace {

template <class G>
__global__ void torchao_adamw_kernel(float* param, const G* grad, float* m, float* v, int64_t n, TorchaoAdamWArgs args) {
  GRID_STRIDE_LOOP(i, n) param[i] = torchao_adamw_element(param[i], to_f32(grad[i]), m[i], v[i], args);
}

struct TorchaoAdamWUpdate {
  TorchaoAdamWArgs args;
  __device__ float operator()(float p, float g, float* m) const { return torchao_adamw_element(p, g, m[0], m[1], args); }
};

}  // namespace

void CudaBackend::torchao_adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& m_scale, Tensor& v,
                                Tensor& v_scale, const TorchaoAdamWArgs& args) {
  activate();
  if (m_scale.defined()) {
    const std::array<std::pair<Tensor*, Tensor*>, 2> moments{{{&m, &m_scale}, {&v, &v_scale}}};
    auto launch = [&](auto quant) {
      launch_blockwise_8bit<2, decltype(quant)>("torchao_adamw", stream_, param, grad, moments, {true, false},
                                                TorchaoAdamWUpdate{args});
    };
    switch (args.codes) {
      case TorchaoCodes::dynamic_8bit: launch(TorchaoBlockQuant<8>{}); break;
      case TorchaoCodes::dynamic_4bit: launch(TorchaoBlockQuant<4>{}); break;
      case TorchaoCodes::fp8: launch(TorchaoFp8BlockQuant{}); break;
    }
  } else {
    LLM_CHECK(param.dtype() == DType::f32 && m.dtype() == DType::f32 && v.dtype() == DType::f32,
              "torchao_adamw on CUDA keeps f32 weights and moments; got param " + param.str() + ", m " + m.str());
    LLM_CHECK(grad.numel() == param.numel() && m.numel() == param.numel() && v.numel() == param.numel(),
              "torchao_adamw: grad " + grad.str() + ", m " + m.str() + " and v " + v.str() + " for " + param.str());
    const int64_t n = param.numel();
    if (n == 0) return;
    dispatch_float("torchao_adamw", grad, [&](auto tag) {
      using G = decltype(tag);
      torchao_adamw_kernel<<<grid_for(n), kThreads, 0, stream_>>>(param.data<float>(), grad.data<G>(), m.data<float>(),
                                                                  v.data<float>(), n, args);
    });
  }
  CUDA_CHECK_OP("torchao_adamw", param, grad, m, v);
}

}  // namespace llm
