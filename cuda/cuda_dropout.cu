// defines: CudaBackend::dropout, add_uniform_noise (elementwise, their draws from
// engine/counter_random.h, f32 math on f32 or bf16 storage; a 16-byte word a load where every
// pointer is aligned, cuda/vec.cuh). Element i's draw depends on i alone, so both widths, the
// backward's pass and the CPU's give the same mask and noise.
//
// One element a load, add_uniform_noise ran at 30% of an H200's HBM bandwidth (forward) and 19%
// (forward and backward) (bench/results/2026-12-04-gpu-run.md); LoRA's dropout, one pass a
// targeted linear's input forward and one backward, moved bytes the same way.
#include "cuda/cuda_common.cuh"
#include "cuda/vec.cuh"
#include "engine/counter_random.h"

namespace llm {

namespace {

template <class T, int W>
__global__ void dropout_kernel(const T* x, T* out, float p, float scale, uint64_t seed, int64_t n) {
  for_each_vec<W>(n, [&](auto width, int64_t unit) {
    constexpr int K = decltype(width)::value;
    map_unit<K>(x, out, unit, [&](float v, int j) {
      return dropout_keep(seed, unit * K + j, p) ? v * scale : 0.0f;
    });
  });
}

template <class T, int W>
__global__ void uniform_noise_kernel(const T* x, T* out, float magnitude, uint64_t seed, int64_t n) {
  for_each_vec<W>(n, [&](auto width, int64_t unit) {
    constexpr int K = decltype(width)::value;
    map_unit<K>(x, out, unit, [&](float v, int j) {
      return v + magnitude * (2.0f * uniform01(seed, unit * K + j) - 1.0f);
    });
  });
}

}  // namespace

void CudaBackend::dropout(const Tensor& x, float p, uint64_t seed, Tensor& out) {
  const int64_t n = x.numel();
  if (n == 0) return;
  activate();
  dispatch_float("dropout", x, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    launch_vec(n, [&](auto width, unsigned blocks) {
      dropout_kernel<T, width()><<<blocks, kThreads, 0, stream_>>>(xp, op, p, 1.0f / (1.0f - p), seed, n);
    }, xp, op);
  });
  CUDA_CHECK_OP("dropout", x, out);
}

void CudaBackend::add_uniform_noise(const Tensor& x, float magnitude, uint64_t seed, Tensor& out) {
  const int64_t n = x.numel();
  if (n == 0) return;
  activate();
  dispatch_float("add_uniform_noise", x, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    launch_vec(n, [&](auto width, unsigned blocks) {
      uniform_noise_kernel<T, width()><<<blocks, kThreads, 0, stream_>>>(xp, op, magnitude, seed, n);
    }, xp, op);
  });
  CUDA_CHECK_OP("add_uniform_noise", x, out);
}

}  // namespace llm
