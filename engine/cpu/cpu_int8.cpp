// defines: CPU int8_dequantize (bitsandbytes' int8_vectorwise_dequant, the reference for the CUDA
// kernel)
#include "engine/check.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/int8.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::int8_dequantize(const QuantWeight& w, Tensor& out) {
  require_int8_weight(w);
  LLM_CHECK(out.shape() == w.shape && (out.dtype() == DType::f32 || out.dtype() == DType::bf16),
            "int8_dequantize: out " + out.str() + " for a weight of " + shape_str(w.shape));
  OpTimer timer("int8_dequantize");
  const uint8_t* codes = w.codes.data<uint8_t>();
  const float* scb = w.absmax.data<float>();
  const int64_t rows = w.shape[0], cols = w.shape[1];
#pragma omp parallel for if (rows * cols >= kMinParallelElements)
  for (int64_t r = 0; r < rows; r++)
    for (int64_t i = r * cols; i < (r + 1) * cols; i++) {
      const float v = int8_value(codes[i], scb[r]);
      if (out.dtype() == DType::f32) out.data<float>()[i] = v;
      else out.data<uint16_t>()[i] = f32_to_bf16(v);
    }
}

}  // namespace llm
