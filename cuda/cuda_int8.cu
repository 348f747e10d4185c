// defines: CudaBackend::int8_dequantize (LLM.int8's row-wise int8 codes to f32 or bf16, the CPU's
// arithmetic; the quantised linear layer then runs cuBLASLt on the result,
// engine/ops/quantized_linear.cpp)
#include "cuda/cuda_common.cuh"
#include "cuda/vec.cuh"
#include "engine/int8.h"

namespace llm {

namespace {

// 8 elements a thread where rows hold whole words (cols % 8 == 0) and the pointers lie on them
// (cuda/vec.cuh): 8 code bytes in one load, 8 values in one store, one row scale; element by
// element otherwise. The row's scale is a cached load shared by the row's threads.
template <class T, int W>
__global__ void int8_dequantize_kernel(const uint8_t* codes, const float* scb, T* out, int64_t n, int64_t cols) {
  for_each_vec<W>(n, [&](auto width, int64_t unit) {
    constexpr int K = decltype(width)::value;
    const float scale = scb[unit * K / cols];
    const VecN<uint8_t, K> c = load_vec<K>(codes, unit);
    VecN<T, K> o;
#pragma unroll
    for (int j = 0; j < K; j++) o.v[j] = from_f32<T>(int8_value(c.v[j], scale));
    store_vec<K>(out, unit, o);
  });
}

}  // namespace

void CudaBackend::int8_dequantize(const QuantWeight& w, Tensor& out) {
  require_int8_weight(w);
  LLM_CHECK(out.shape() == w.shape, "int8_dequantize: out " + out.str() + " for a weight of " + shape_str(w.shape));
  const int64_t n = w.numel();
  if (n == 0) return;
  activate();
  dispatch_float("int8_dequantize", out, [&](auto tag) {
    using T = decltype(tag);
    const uint8_t* codes = w.codes.data<uint8_t>();
    T* op = out.data<T>();
    const int64_t cols = w.shape[1];
    auto launch = [&](auto width, unsigned blocks) {
      int8_dequantize_kernel<T, width()><<<blocks, kThreads, 0, stream_>>>(codes, w.absmax.data<float>(), op, n, cols);
    };
    if (cols % 8 == 0) launch_vec(n, launch, codes, op);
    else launch(std::integral_constant<int, 1>{}, grid_for(n));
  });
  CUDA_CHECK_OP("int8_dequantize", w.codes, w.absmax, out);
}

}  // namespace llm
