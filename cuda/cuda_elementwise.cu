// defines: CudaBackend::axpby, mul, multiply_by_mask, scale, scale_by (elementwise, f32 math on f32 or bf16 storage)
#include "cuda/cuda_common.cuh"

namespace llm {

namespace {

// out may alias x or y (gradient accumulation adds in place): each element is read before its
// own write, by the same thread.
template <class T>
__global__ void axpby_kernel(float a, const T* x, float b, const T* y, T* out, int64_t n) {
  GRID_STRIDE_LOOP(i, n) out[i] = from_f32<T>(a * to_f32(x[i]) + b * to_f32(y[i]));
}

template <class T>
__global__ void mul_kernel(const T* x, const T* y, T* out, int64_t n) {
  GRID_STRIDE_LOOP(i, n) out[i] = from_f32<T>(to_f32(x[i]) * to_f32(y[i]));
}

template <class T>
__global__ void mask_kernel(T* x, const uint8_t* keep, int64_t n) {
  GRID_STRIDE_LOOP(i, n) x[i] = from_f32<T>(to_f32(x[i]) * (keep[i] ? 1.0f : 0.0f));
}

template <class T>
__global__ void scale_kernel(T* x, float s, int64_t n) {
  GRID_STRIDE_LOOP(i, n) x[i] = from_f32<T>(to_f32(x[i]) * s);
}

// The factor is read by every thread from device memory: no host round trip to learn it.
template <class T>
__global__ void scale_by_kernel(T* x, const float* s, int64_t n) {
  const float f = *s;
  GRID_STRIDE_LOOP(i, n) x[i] = from_f32<T>(to_f32(x[i]) * f);
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
    axpby_kernel<<<grid_for(n), kThreads, 0, stream_>>>(a, x.data<T>(), b, y.data<T>(),
                                                        out.data<T>(), n);
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
    mul_kernel<<<grid_for(n), kThreads, 0, stream_>>>(x.data<T>(), y.data<T>(), out.data<T>(), n);
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
    mask_kernel<<<grid_for(n), kThreads, 0, stream_>>>(x.data<T>(), keep.data<uint8_t>(), n);
  });
  CUDA_CHECK_OP("multiply_by_mask", x, keep);
}

void CudaBackend::scale(Tensor& x, float s) {
  const int64_t n = x.numel();
  if (n == 0) return;
  activate();
  dispatch_float("scale", x, [&](auto tag) {
    using T = decltype(tag);
    scale_kernel<<<grid_for(n), kThreads, 0, stream_>>>(x.data<T>(), s, n);
  });
  CUDA_CHECK_OP("scale", x);
}

void CudaBackend::scale_by(Tensor& x, const Tensor& s) {
  require_scalar_factor("scale_by", s);
  const int64_t n = x.numel();
  if (n == 0) return;
  activate();
  dispatch_float("scale_by", x, [&](auto tag) {
    using T = decltype(tag);
    scale_by_kernel<<<grid_for(n), kThreads, 0, stream_>>>(x.data<T>(), s.data<float>(), n);
  });
  CUDA_CHECK_OP("scale_by", x, s);
}

}  // namespace llm
