// defines: CudaBackend::axpby, mul, multiply_by_mask, scale, scale_by (elementwise, f32 math on f32
// or bf16 storage; a 16-byte word a load where every pointer is aligned, cuda/vec.cuh)
//
// Gradient accumulation, residual adds and clipping's scale of every gradient run here: one
// element a load, such passes moved about 30% of an H200's HBM bandwidth
// (bench/results/2026-11-30-gpu-run.md).
#include "cuda/cuda_common.cuh"
#include "cuda/vec.cuh"

namespace llm {

namespace {

// out may alias x or y (gradient accumulation adds in place): each element is read before its
// own write, by the same thread.
template <class T, int W>
__global__ void axpby_kernel(float a, const T* x, float b, const T* y, T* out, int64_t n) {
  for_each_vec<W>(n, [&](auto width, int64_t unit) {
    constexpr int K = decltype(width)::value;
    const VecN<T, K> yv = load_vec<K>(y, unit);
    map_unit<K>(x, out, unit, [&](float v, int j) { return a * v + b * to_f32(yv.v[j]); });
  });
}

template <class T, int W>
__global__ void mul_kernel(const T* x, const T* y, T* out, int64_t n) {
  for_each_vec<W>(n, [&](auto width, int64_t unit) {
    constexpr int K = decltype(width)::value;
    const VecN<T, K> yv = load_vec<K>(y, unit);
    map_unit<K>(x, out, unit, [&](float v, int j) { return v * to_f32(yv.v[j]); });
  });
}

// Sparse fine-tuning's masks after every step, over every pruned weight: 8 elements a load (the
// mask's 8 bytes beside 16 or 32 of weights).
template <class T, int W>
__global__ void mask_kernel(T* x, const uint8_t* keep, int64_t n) {
  for_each_vec<W>(n, [&](auto width, int64_t unit) {
    constexpr int K = decltype(width)::value;
    const VecN<uint8_t, K> k = load_vec<K>(keep, unit);
    map_unit<K>(x, x, unit, [&](float v, int j) { return v * (k.v[j] ? 1.0f : 0.0f); });
  });
}

// s_ptr: the factor's numerator in device memory, read by every thread (no host round trip to
// learn it), over s; null for the host's s. A factor of 1 writes nothing: every block returns.
template <class T, int W>
__global__ void scale_kernel(T* x, float s, const float* s_ptr, int64_t n) {
  const float f = s_ptr ? *s_ptr / s : s;
  if (f == 1.0f) return;
  for_each_vec<W>(n, [&](auto width, int64_t unit) {
    map_unit<decltype(width)::value>(x, x, unit, [&](float v, int) { return v * f; });
  });
}

void launch_scale(const char* op, Tensor& x, float s, const float* s_ptr, cudaStream_t stream) {
  const int64_t n = x.numel();
  dispatch_float(op, x, [&](auto tag) {
    using T = decltype(tag);
    T* xp = x.data<T>();
    launch_vec(n, [&](auto width, unsigned blocks) {
      scale_kernel<T, width()><<<blocks, kThreads, 0, stream>>>(xp, s, s_ptr, n);
    }, xp);
  });
}

}  // namespace

void CudaBackend::axpby(float a, const Tensor& x, float b, const Tensor& y, Tensor& out) {
  require_same_dtype("axpby", x, y);
  require_same_dtype("axpby", x, out);
  const int64_t n = x.numel();
  if (n == 0) return;
  activate();
  dispatch_float("axpby", x, [&](auto tag) {
    using T = decltype(tag);
    const T *xp = x.data<T>(), *yp = y.data<T>();
    T* op = out.data<T>();
    launch_vec(n, [&](auto width, unsigned blocks) {
      axpby_kernel<T, width()><<<blocks, kThreads, 0, stream_>>>(a, xp, b, yp, op, n);
    }, xp, yp, op);
  });
  CUDA_CHECK_OP("axpby", x, y, out);
}

void CudaBackend::mul(const Tensor& x, const Tensor& y, Tensor& out) {
  require_same_dtype("mul", x, y);
  require_same_dtype("mul", x, out);
  const int64_t n = x.numel();
  if (n == 0) return;
  activate();
  dispatch_float("mul", x, [&](auto tag) {
    using T = decltype(tag);
    const T *xp = x.data<T>(), *yp = y.data<T>();
    T* op = out.data<T>();
    launch_vec(n, [&](auto width, unsigned blocks) {
      mul_kernel<T, width()><<<blocks, kThreads, 0, stream_>>>(xp, yp, op, n);
    }, xp, yp, op);
  });
  CUDA_CHECK_OP("mul", x, y, out);
}

void CudaBackend::multiply_by_mask(Tensor& x, const Tensor& keep) {
  LLM_CHECK(keep.dtype() == DType::u8 && keep.numel() == x.numel(),
            "multiply_by_mask on CUDA: keep " + keep.str() + " must be u8 of x's shape " + x.str());
  const int64_t n = x.numel();
  if (n == 0) return;
  activate();
  dispatch_float("multiply_by_mask", x, [&](auto tag) {
    using T = decltype(tag);
    T* xp = x.data<T>();
    const uint8_t* kp = keep.data<uint8_t>();
    launch_vec(n, [&](auto width, unsigned blocks) {
      mask_kernel<T, width()><<<blocks, kThreads, 0, stream_>>>(xp, kp, n);
    }, xp, kp);
  });
  CUDA_CHECK_OP("multiply_by_mask", x, keep);
}

void CudaBackend::scale(Tensor& x, float s) {
  const int64_t n = x.numel();
  if (n == 0) return;
  activate();
  launch_scale("scale", x, s, nullptr, stream_);
  CUDA_CHECK_OP("scale", x);
}

void CudaBackend::scale_by(Tensor& x, const Tensor& s, float expected) {
  require_scalar_factor("scale_by", s);
  const int64_t n = x.numel();
  if (n == 0) return;
  activate();
  launch_scale("scale_by", x, expected, s.data<float>(), stream_);
  CUDA_CHECK_OP("scale_by", x, s);
}

}  // namespace llm
