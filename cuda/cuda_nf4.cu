// defines: CudaBackend::nf4_dequantize (NF4 codes to f32 or bf16, the CPU's arithmetic; the NF4
// linear layer then runs cuBLASLt on the result, engine/ops/quantized_linear.cpp)
#include <array>

#include "cuda/cuda_common.cuh"
#include "engine/nf4.h"
#include "engine/quant_map.h"

namespace llm {

namespace {

// The NF4 code values and the absmax's dynamic map travel as a kernel argument (1 KiB).
struct Nf4Maps {
  float nf4[16], dynamic[256];
};

// One thread per element, grid-stride. A block's absmax is recomputed by each of its elements:
// two table loads and two flops, cheaper than a second pass or a shared-memory stage.
template <class T>
__global__ void nf4_dequantize_kernel(const uint8_t* codes, const uint8_t* absmax_codes,
                                      const float* absmax_f32, const float* absmax_scale,
                                      float offset, T* out, int64_t n, Nf4Maps maps) {
  GRID_STRIDE_LOOP(i, n) {
    const int64_t b = i / kNf4Block;
    const float absmax = absmax_scale
        ? nf4_absmax_value(maps.dynamic[absmax_codes[b]], absmax_scale[b / kNf4AbsmaxBlock], offset)
        : absmax_f32[b];
    out[i] = from_f32<T>(nf4_value(codes, i, absmax, maps.nf4));
  }
}

}  // namespace

void CudaBackend::nf4_dequantize(const QuantWeight& w, Tensor& out) {
  require_nf4_weight(w);
  LLM_CHECK(out.shape() == w.shape, "nf4_dequantize: out " + out.str() + " for a weight of " + shape_str(w.shape));
  static const Nf4Maps maps = [] {
    Nf4Maps m;
    const std::array<float, 256> dynamic = dynamic_quant_map(true);
    std::copy(kNf4Code, kNf4Code + 16, m.nf4);
    std::copy(dynamic.begin(), dynamic.end(), m.dynamic);
    return m;
  }();
  const int64_t n = w.numel();
  if (n == 0) return;
  activate();
  const bool dq = w.double_quant();
  dispatch_float("nf4_dequantize", out, [&](auto tag) {
    using T = decltype(tag);
    nf4_dequantize_kernel<<<grid_for(n, 65536), kThreads, 0, stream_>>>(
        w.codes.data<uint8_t>(), dq ? w.absmax.data<uint8_t>() : nullptr,
        dq ? nullptr : w.absmax.data<float>(), dq ? w.absmax_scale.data<float>() : nullptr,
        w.absmax_offset, out.data<T>(), n, maps);
  });
  CUDA_CHECK_OP("nf4_dequantize", w.codes, w.absmax, out);
}

}  // namespace llm
