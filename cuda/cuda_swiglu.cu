// defines: CudaBackend::swiglu_forward, swiglu_backward (elementwise, f32 math on f32 or bf16
// storage; a 16-byte word a load where aligned)
#include "cuda/cuda_common.cuh"
#include "cuda/vec.cuh"

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

// W = 4 (f32) or 8 (bf16): every pointer on its W-element word (cuda/vec.cuh); W = 1 element-wise.
template <class T, int W>
__global__ void swiglu_forward_kernel(const T* gate, const T* up, T* out, int64_t n) {
  for_each_vec<W>(n, [&](auto width, int64_t unit) {
    constexpr int K = decltype(width)::value;
    const VecN<T, K> g = load_vec<K>(gate, unit), u = load_vec<K>(up, unit);
    VecN<T, K> o;
    for (int j = 0; j < K; j++) o.v[j] = swiglu_value(g.v[j], u.v[j]);
    store_vec<K>(out, unit, o);
  });
}

template <class T, int W>
__global__ void swiglu_backward_kernel(const T* gate, const T* up, const T* dout, T* dgate,
                                       T* dup, int64_t n) {
  for_each_vec<W>(n, [&](auto width, int64_t unit) {
    constexpr int K = decltype(width)::value;
    const VecN<T, K> g = load_vec<K>(gate, unit), u = load_vec<K>(up, unit), d = load_vec<K>(dout, unit);
    VecN<T, K> dg, du;
    for (int j = 0; j < K; j++) swiglu_gradients(g.v[j], u.v[j], d.v[j], dg.v[j], du.v[j]);
    store_vec<K>(dgate, unit, dg);
    store_vec<K>(dup, unit, du);
  });
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
    launch_vec(n, [&](auto width, unsigned blocks) {
      swiglu_forward_kernel<T, width()><<<blocks, kThreads, 0, stream_>>>(g, u, o, n);
    }, g, u, o);
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
    launch_vec(n, [&](auto width, unsigned blocks) {
      swiglu_backward_kernel<T, width()><<<blocks, kThreads, 0, stream_>>>(g, u, d, dg, du, n);
    }, g, u, d, dg, du);
  });
  CUDA_CHECK_OP("swiglu_backward", gate, up, dout, dgate, dup);
}

}  // namespace llm
