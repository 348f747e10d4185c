// defines: CudaBackend::swiglu_forward, swiglu_backward (elementwise, f32 math on f32 or bf16
// storage; 4 elements a thread where aligned)
#include "cuda/cuda_common.cuh"
#include "cuda/vec4.cuh"

namespace llm {

namespace {

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

template <class T>
__device__ __forceinline__ T swiglu_value(T gate, T up) {
  const float g = to_f32(gate);
  return from_f32<T>(g * sigmoid(g) * to_f32(up));
}

// d silu(g)/dg = sig(g) * (1 + g * (1 - sig(g))).
template <class T>
__device__ __forceinline__ void swiglu_gradients(T gate, T up, T dout, T& dgate, T& dup) {
  const float g = to_f32(gate), u = to_f32(up), d = to_f32(dout);
  const float s = sigmoid(g);
  dup = from_f32<T>(d * g * s);
  dgate = from_f32<T>(d * u * s * (1.0f + g * (1.0f - s)));
}

template <class T>
__global__ void swiglu_forward_kernel(const T* gate, const T* up, T* out, int64_t n) {
  GRID_STRIDE_LOOP(i, n) out[i] = swiglu_value(gate[i], up[i]);
}

template <class T>
__global__ void swiglu_backward_kernel(const T* gate, const T* up, const T* dout, T* dgate,
                                       T* dup, int64_t n) {
  GRID_STRIDE_LOOP(i, n) swiglu_gradients(gate[i], up[i], dout[i], dgate[i], dup[i]);
}

// Every pointer aligned to its 4-element word (cuda/vec4.cuh).
template <class T>
__global__ void swiglu_forward4_kernel(const T* gate, const T* up, T* out, int64_t n) {
  GRID_STRIDE_LOOP(group, n / 4) {
    const Vec4<T> g = load4(gate, group), u = load4(up, group);
    Vec4<T> o;
    for (int j = 0; j < 4; j++) o.v[j] = swiglu_value(g.v[j], u.v[j]);
    store4(out, group, o);
  }
  if (const int64_t i = tail_of_4(n); i >= 0) out[i] = swiglu_value(gate[i], up[i]);
}

template <class T>
__global__ void swiglu_backward4_kernel(const T* gate, const T* up, const T* dout, T* dgate,
                                        T* dup, int64_t n) {
  GRID_STRIDE_LOOP(group, n / 4) {
    const Vec4<T> g = load4(gate, group), u = load4(up, group), d = load4(dout, group);
    Vec4<T> dg, du;
    for (int j = 0; j < 4; j++) swiglu_gradients(g.v[j], u.v[j], d.v[j], dg.v[j], du.v[j]);
    store4(dgate, group, dg);
    store4(dup, group, du);
  }
  if (const int64_t i = tail_of_4(n); i >= 0) swiglu_gradients(gate[i], up[i], dout[i], dgate[i], dup[i]);
}

}  // namespace

void CudaBackend::swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  require_same_dtype("swiglu", gate, up);
  const int64_t n = gate.numel();
  if (n == 0) return;
  activate();
  dispatch_float("swiglu", gate, [&](auto tag) {
    using T = decltype(tag);
    const T *g = gate.data<T>(), *u = up.data<T>();
    T* o = out.data<T>();
    if (aligned4<T>(g) && aligned4<T>(u) && aligned4<T>(o))
      swiglu_forward4_kernel<<<grid_for_groups_of_4(n), kThreads, 0, stream_>>>(g, u, o, n);
    else
      swiglu_forward_kernel<<<grid_for(n), kThreads, 0, stream_>>>(g, u, o, n);
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
    const T *g = gate.data<T>(), *u = up.data<T>(), *d = dout.data<T>();
    T *dg = dgate.data<T>(), *du = dup.data<T>();
    if (aligned4<T>(g) && aligned4<T>(u) && aligned4<T>(d) && aligned4<T>(dg) && aligned4<T>(du))
      swiglu_backward4_kernel<<<grid_for_groups_of_4(n), kThreads, 0, stream_>>>(g, u, d, dg, du, n);
    else
      swiglu_backward_kernel<<<grid_for(n), kThreads, 0, stream_>>>(g, u, d, dg, du, n);
  });
  CUDA_CHECK_OP("swiglu_backward", gate, up, dout, dgate, dup);
}

}  // namespace llm
