// defines: CudaBackend::came (engine/came_math.h; the CPU's algorithm, every sum in a fixed order,
// so the update is the same run to run)
#include "cuda/factored_moments.cuh"
#include "engine/came_math.h"

namespace llm {

namespace {

// m from the clipped update; a matrix keeps each element's instability (unstable), a vector
// (unstable null) steps along m at once.
template <class G>
__global__ void came_momentum_kernel(float* param, float* m, float* unstable, factored::ScaledGrad<G> u,
                                     const float* divisor, int64_t n, CameArgs a) {
  GRID_STRIDE_LOOP(i, n) {
    const float clipped = u(i) / *divisor;
    m[i] = came_momentum(m[i], clipped, a);
    if (unstable != nullptr) unstable[i] = came_instability(clipped, m[i], a);
    else param[i] = came_apply(param[i], m[i], a);
  }
}

// A matrix's step: m scaled by the factored instability.
__global__ void came_apply_kernel(float* param, const float* m, const float* row, const float* col,
                                  const float* row_mean, int64_t n, int64_t C, CameArgs a) {
  GRID_STRIDE_LOOP(i, n) param[i] = came_apply(param[i], factored::scale_at(row, col, *row_mean, C, i) * m[i], a);
}

}  // namespace

void CudaBackend::came(Tensor& param, const Tensor& grad, Tensor& m, FactoredMoment& second,
                       FactoredMoment& instability, const CameArgs& args) {
  LLM_CHECK(param.dtype() == DType::f32 && m.dtype() == DType::f32,
            "came on CUDA keeps f32 weights and moments; got param " + param.str() + ", m " + m.str());
  const int64_t n = param.numel();
  const bool matrix = second.col.defined();
  const int64_t C = matrix ? second.col.numel() : 1;
  LLM_CHECK(grad.numel() == n && m.numel() == n, "came: grad " + grad.str() + ", m " + m.str() + " for " + param.str());
  // As the CPU's update_factored checks them: f32 means, a row per C elements (a vector's per
  // element), and the instability's (a matrix's only) of the same shape.
  auto require_factored = [&](const char* what, const FactoredMoment& f) {
    LLM_CHECK(f.row.dtype() == DType::f32 && (!matrix || (f.col.defined() && f.col.dtype() == DType::f32 &&
                                                          f.col.numel() == C)) &&
                  f.row.numel() * C == n,
              std::string("came: ") + what + " row " + f.row.str() + (matrix ? " and col " + f.col.str() : "") +
                  " for " + param.str());
  };
  require_factored("second moment", second);
  if (matrix) require_factored("instability", instability);
  if (n == 0) return;
  activate();
  // The second moment's row mean, the clip's divisor, the instability's row mean.
  Tensor scalars = Tensor::zeros({3}, DType::f32, param.device());
  float* row_mean = scalars.data<float>();
  Tensor unstable = matrix ? scratch({n}, DType::f32) : Tensor();
  const AdafactorArgs& a = args.second;
  dispatch_float("came", grad, [&](auto tag) {
    using G = decltype(tag);
    const G* g = grad.data<G>();
    factored::update_means(factored::GradSquare<G>{g, a}, second.row, second.col, n, a, row_mean, stream_);
    const factored::ScaledGrad<G> u{g, second.row.data<float>(), matrix ? second.col.data<float>() : nullptr, row_mean,
                                    C, a};
    factored::clip_divisor(u, n, a, row_mean + 1, param.device(), stream_);
    came_momentum_kernel<<<grid_for(n), kThreads, 0, stream_>>>(
        param.data<float>(), m.data<float>(), matrix ? unstable.data<float>() : nullptr, u, row_mean + 1, n, args);
  });
  if (matrix) {
    factored::update_means(factored::Stored{unstable.data<float>()}, instability.row, instability.col, n,
                           args.instability, row_mean + 2, stream_);
    came_apply_kernel<<<grid_for(n), kThreads, 0, stream_>>>(param.data<float>(), m.data<float>(),
                                                            instability.row.data<float>(), instability.col.data<float>(),
                                                            row_mean + 2, n, C, args);
  }
  CUDA_CHECK_OP("came", param, grad, m);
}

}  // namespace llm
