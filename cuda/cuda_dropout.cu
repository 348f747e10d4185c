// defines: CudaBackend::dropout, add_uniform_noise (elementwise, their draws from
// engine/counter_random.h, f32 math on f32 or bf16 storage)
#include "cuda/cuda_common.cuh"
#include "engine/counter_random.h"

namespace llm {

namespace {

template <class T>
__global__ void dropout_kernel(const T* x, T* out, float p, float scale, uint64_t seed, int64_t n) {
  GRID_STRIDE_LOOP(i, n) {
    out[i] = from_f32<T>(dropout_keep(seed, i, p) ? to_f32(x[i]) * scale : 0.0f);
  }
}

template <class T>
__global__ void uniform_noise_kernel(const T* x, T* out, float magnitude, uint64_t seed, int64_t n) {
  GRID_STRIDE_LOOP(i, n) out[i] = from_f32<T>(to_f32(x[i]) + magnitude * (2.0f * uniform01(seed, i) - 1.0f));
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

void CudaBackend::add_uniform_noise(const Tensor& x, float magnitude, uint64_t seed, Tensor& out) {
  const int64_t n = x.numel();
  if (n == 0) return;
  activate();
  dispatch_float("add_uniform_noise", x, [&](auto tag) {
    using T = decltype(tag);
    uniform_noise_kernel<<<grid_for(n), kThreads, 0, stream_>>>(x.data<T>(), out.data<T>(), magnitude, seed, n);
  });
  CUDA_CHECK_OP("add_uniform_noise", x, out);
}

}  // namespace llm
