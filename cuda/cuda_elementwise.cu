// defines: CudaBackend::axpby, mul, scale, swiglu_forward, swiglu_backward (elementwise, f32 math
// on f32 or bf16 storage)
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
__global__ void scale_kernel(T* x, float s, int64_t n) {
  GRID_STRIDE_LOOP(i, n) x[i] = from_f32<T>(to_f32(x[i]) * s);
}

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

template <class T>
__global__ void swiglu_forward_kernel(const T* gate, const T* up, T* out, int64_t n) {
  GRID_STRIDE_LOOP(i, n) {
    const float g = to_f32(gate[i]);
    out[i] = from_f32<T>(g * sigmoid(g) * to_f32(up[i]));
  }
}

// d silu(g)/dg = sig(g) * (1 + g * (1 - sig(g))).
template <class T>
__global__ void swiglu_backward_kernel(const T* gate, const T* up, const T* dout, T* dgate,
                                       T* dup, int64_t n) {
  GRID_STRIDE_LOOP(i, n) {
    const float g = to_f32(gate[i]), u = to_f32(up[i]), d = to_f32(dout[i]);
    const float s = sigmoid(g);
    dup[i] = from_f32<T>(d * g * s);
    dgate[i] = from_f32<T>(d * u * s * (1.0f + g * (1.0f - s)));
  }
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

void CudaBackend::swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  require_same_dtype("swiglu", gate, up);
  const int64_t n = gate.numel();
  if (n == 0) return;
  activate();
  dispatch_float("swiglu", gate, [&](auto tag) {
    using T = decltype(tag);
    swiglu_forward_kernel<<<grid_for(n), kThreads, 0, stream_>>>(gate.data<T>(), up.data<T>(),
                                                                 out.data<T>(), n);
  });
  CUDA_CHECK_OP("swiglu", gate, up, out);
}

void CudaBackend::swiglu_backward(const Tensor& gate, const Tensor& up, const Tensor& dout,
                                  Tensor& dgate, Tensor& dup) {
  require_same_dtype("swiglu_backward", gate, up);
  require_same_dtype("swiglu_backward", gate, dout);
  const int64_t n = gate.numel();
  if (n == 0) return;
  activate();
  dispatch_float("swiglu_backward", gate, [&](auto tag) {
    using T = decltype(tag);
    swiglu_backward_kernel<<<grid_for(n), kThreads, 0, stream_>>>(
        gate.data<T>(), up.data<T>(), dout.data<T>(), dgate.data<T>(), dup.data<T>(), n);
  });
  CUDA_CHECK_OP("swiglu_backward", gate, up, dout, dgate, dup);
}

}  // namespace llm
