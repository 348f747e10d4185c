// defines: CudaBackend::adafactor (engine/adafactor_math.h; the CPU's algorithm, every sum in a
// fixed order, so the update is the same run to run)
#include "cuda/factored_moments.cuh"

namespace llm {

namespace {

template <class G>
__global__ void adafactor_apply_kernel(float* param, factored::ScaledGrad<G> u, const float* divisor, int64_t n,
                                       AdafactorArgs a) {
  GRID_STRIDE_LOOP(i, n) param[i] = adafactor_apply(param[i], u(i), *divisor, a);
}

}  // namespace

void CudaBackend::adafactor(Tensor& param, const Tensor& grad, Tensor& row, Tensor& col, const AdafactorArgs& args) {
  LLM_CHECK(param.dtype() == DType::f32 && row.dtype() == DType::f32 && (!col.defined() || col.dtype() == DType::f32),
            "adafactor on CUDA keeps f32 weights and averages; got param " + param.str() + ", row " + row.str());
  const int64_t n = param.numel(), C = col.defined() ? col.numel() : 1;
  LLM_CHECK(grad.numel() == n && (col.defined() ? row.numel() * C == n : row.numel() == n),
            "adafactor: grad " + grad.str() + ", row " + row.str() + " for " + param.str());
  if (n == 0) return;
  activate();
  Tensor scalars = Tensor::zeros({2}, DType::f32, param.device());  // the row mean, the clip's divisor
  float* row_mean = scalars.data<float>();
  float* divisor = row_mean + 1;
  dispatch_float("adafactor", grad, [&](auto tag) {
    using G = decltype(tag);
    const G* g = grad.data<G>();
    factored::update_means(factored::GradSquare<G>{g, args}, row, col, n, args, row_mean, stream_);
    const factored::ScaledGrad<G> u{g, row.data<float>(), col.defined() ? col.data<float>() : nullptr, row_mean, C, args};
    factored::clip_divisor(u, n, args, divisor, param.device(), stream_);
    adafactor_apply_kernel<<<grid_for(n), kThreads, 0, stream_>>>(param.data<float>(), u, divisor, n, args);
  });
  CUDA_CHECK_OP("adafactor", param, grad, row);
}

}  // namespace llm
