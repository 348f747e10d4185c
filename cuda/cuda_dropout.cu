// defines: CudaBackend::dropout (elementwise, the mask from engine/dropout_mask.h, f32 math on f32
// or bf16 storage)
#include "cuda/cuda_common.cuh"
#include "engine/dropout_mask.h"

namespace llm {

namespace {

template <class T>
__global__ void dropout_kernel(const T* x, T* out, float p, float scale, uint64_t seed, int64_t n) {
  GRID_STRIDE_LOOP(i, n) {
    out[i] = from_f32<T>(dropout_keep(seed, i, p) ? to_f32(x[i]) * scale : 0.0f);
  }
}

}  // namespace

void CudaBackend::dropout(const Tensor& x, float p, uint64_t seed, Tensor& out) {
  const int64_t n = x.numel();
  if (n == 0) return;
  activate();
  dispatch_float("dropout", x, [&](auto tag) {
    using T = decltype(tag);
    dropout_kernel<<<grid_for(n), kThreads, 0, stream_>>>(x.data<T>(), out.data<T>(), p,
                                                          1.0f / (1.0f - p), seed, n);
  });
  CUDA_CHECK_OP("dropout", x, out);
}

}  // namespace llm
