// defines: CudaBackend::int8_dequantize (LLM.int8's row-wise int8 codes to f32 or bf16, the CPU's
// arithmetic; the quantised linear layer then runs cuBLASLt on the result,
// engine/ops/quantized_linear.cpp)
#include "cuda/cuda_common.cuh"
#include "engine/int8.h"

namespace llm {

namespace {

// One thread per element, grid-stride; each reads its row's scale (a cached load shared by the
// row's threads).
template <class T>
__global__ void int8_dequantize_kernel(const uint8_t* codes, const float* scb, T* out, int64_t n, int64_t cols) {
  GRID_STRIDE_LOOP(i, n) { out[i] = from_f32<T>(int8_value(codes[i], scb[i / cols])); }
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
    int8_dequantize_kernel<<<grid_for(n, 65536), kThreads, 0, stream_>>>(
        w.codes.data<uint8_t>(), w.absmax.data<float>(), out.data<T>(), n, w.shape[1]);
  });
  CUDA_CHECK_OP("int8_dequantize", w.codes, w.absmax, out);
}

}  // namespace llm
