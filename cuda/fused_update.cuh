// defines: launch_fused_update: an optimizer's elementwise update in one pass over its f32 master
// weights, its f32 state tensors and the gradient (f32 or bf16), a 16-byte word of the narrowest
// type a load where every pointer lies on one (cuda/vec.cuh), else element by element. Used by
// Lion, AdEMAMix, ADOPT, Schedule-Free and torch.optim's SGD, Adagrad and RMSprop, whose kernels
// loaded one element at a time (Lion 75%, Schedule-Free 65%, AdEMAMix 60% of an H200's HBM
// bandwidth, bench/results/2026-12-04-gpu-run.md, where AdamW's 16-byte words reached 82.5%).
// The update is the functor their blockwise 8-bit forms take (cuda/blockwise_8bit.cuh):
// update(p, g, s) returns the new weight, s the element's S state values, updated in place. The
// files using it compile without FMA contraction, so both widths give the same bits.
#pragma once
#include <utility>

#include "cuda/vec.cuh"

namespace llm {

// The state tensors' data, null where an update keeps no such state (it reads 0, nothing is stored).
template <int S>
struct StateArg {
  float* ptr[S];
};

template <int S, class G, int W, class Update>
__global__ void fused_update_kernel(float* param, const G* grad, StateArg<S> state, int64_t n, Update update) {
  for_each_vec<W>(n, [&](auto width, int64_t unit) {
    constexpr int K = decltype(width)::value;
    VecN<float, K> p = load_vec<K>(param, unit), s[S];
    const VecN<G, K> g = load_vec<K>(grad, unit);
#pragma unroll
    for (int k = 0; k < S; k++) s[k] = state.ptr[k] ? load_vec<K>(state.ptr[k], unit) : VecN<float, K>{};
#pragma unroll
    for (int j = 0; j < K; j++) {
      float e[S];
#pragma unroll
      for (int k = 0; k < S; k++) e[k] = s[k].v[j];
      p.v[j] = update(p.v[j], to_f32(g.v[j]), e);
#pragma unroll
      for (int k = 0; k < S; k++) s[k].v[j] = e[k];
    }
    store_vec<K>(param, unit, p);
#pragma unroll
    for (int k = 0; k < S; k++)
      if (state.ptr[k]) store_vec<K>(state.ptr[k], unit, s[k]);
  });
}

// param f32 and the state tensors (each param's numel, or null) updated in place on `stream`.
template <int S, class Update, size_t... I>
void launch_fused_update(const char* op, cudaStream_t stream, Tensor& param, const Tensor& grad, StateArg<S> state,
                         Update update, std::index_sequence<I...>) {
  const int64_t n = param.numel();
  if (n == 0) return;
  float* p = param.data<float>();
  dispatch_float(op, grad, [&](auto tag) {
    using G = decltype(tag);
    const G* g = grad.data<G>();
    launch_vec(n, [&](auto width, unsigned blocks) {
      fused_update_kernel<S, G, width()><<<blocks, kThreads, 0, stream>>>(p, g, state, n, update);
    }, p, g, static_cast<const float*>(state.ptr[I])...);
  });
}

template <int S, class Update>
void launch_fused_update(const char* op, cudaStream_t stream, Tensor& param, const Tensor& grad, StateArg<S> state,
                         Update update) {
  launch_fused_update(op, stream, param, grad, state, update, std::make_index_sequence<S>{});
}

}  // namespace llm
