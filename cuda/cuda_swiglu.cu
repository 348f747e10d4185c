// defines: CudaBackend::swiglu_forward, swiglu_backward (elementwise, f32 math on f32 or bf16
// storage)
#include "cuda/cuda_common.cuh"

namespace llm {

namespace {

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
