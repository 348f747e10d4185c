// defines: CPU nf4_dequantize (bitsandbytes' dequantize_4bit, the reference for the CUDA kernel)
#include <array>

#include "engine/check.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/nf4.h"
#include "engine/op_timer.h"
#include "engine/quant_map.h"

namespace llm {

void CpuBackend::nf4_dequantize(const QuantWeight& w, Tensor& out) {
  require_nf4_weight(w);
  LLM_CHECK(out.shape() == w.shape && (out.dtype() == DType::f32 || out.dtype() == DType::bf16),
            "nf4_dequantize: out " + out.str() + " for a weight of " + shape_str(w.shape));
  OpTimer timer("nf4_dequantize");
  static const std::array<float, 256> map = dynamic_quant_map(true);
  const uint8_t* codes = w.codes.data<uint8_t>();
  const int64_t n = w.numel(), blocks = w.blocks();
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t b = 0; b < blocks; b++) {
    const float absmax = w.double_quant()
        ? nf4_absmax_value(map[w.absmax.data<uint8_t>()[b]], w.absmax_scale.data<float>()[b / kNf4AbsmaxBlock],
                           w.absmax_offset)
        : w.absmax.data<float>()[b];
    const int64_t lo = b * kNf4Block, hi = std::min(n, lo + kNf4Block);
    for (int64_t i = lo; i < hi; i++) {
      const float v = nf4_value(codes, i, absmax, kNf4Code);
      if (out.dtype() == DType::f32) out.data<float>()[i] = v;
      else out.data<uint16_t>()[i] = f32_to_bf16(v);
    }
  }
}

}  // namespace llm
