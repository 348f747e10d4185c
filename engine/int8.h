// LLM.int8's weight storage (Dettmers et al., "LLM.int8()"), as bitsandbytes' Int8Params stores a
// Linear weight under load_in_8bit: the weight cast to fp16, then per row (output feature)
// SCB = max |w| and code = round(w * (127 / SCB)) in int8. bnb's forward (Linear8bitLt, outlier
// threshold 6.0) multiplies int8 activations by these codes in int8 and the activation columns
// holding an outlier in fp16; ours dequantises the weight (code x SCB / 127) into the compute
// dtype and runs the ordinary GEMM: numerically closer to the unquantised base, not bit-equal to
// bnb's forward. The weight is a QuantWeight of format int8 (engine/quant_weight.h).
#pragma once
#include <cstdint>

#include "engine/host_device.h"
#include "engine/quant_weight.h"

namespace llm {

// Bytes of an int8 weight of `rows` x `cols`: one byte a weight and an f32 scale a row.
size_t int8_nbytes(int64_t rows, int64_t cols);

// Quantises w (out, in), f32 or bf16, any device; computed on the host. Each value is first
// rounded to fp16 as bnb does (a weight beyond fp16's range is refused). The result lives on w's
// device.
QuantWeight int8_quantize(const Tensor& w);
// Throws unless the tensors have the dtypes and sizes `shape` needs (a kernel's precondition).
void require_int8_weight(const QuantWeight& w);

// bnb's int8_vectorwise_dequant: code x SCB, then x (1 / 127) as the f32 constant bnb uses: two
// f32 roundings (never one fused multiply-add: the CPU and CUDA kernels must agree bit for bit).
LLM_HOST_DEVICE float int8_value(uint8_t code, float scb) {
  const float c = static_cast<float>(static_cast<int8_t>(code));
#ifdef __CUDA_ARCH__
  return __fmul_rn(__fmul_rn(c, scb), 7.874015718698502e-3f);
#else
  return c * scb * 7.874015718698502e-3f;
#endif
}

}  // namespace llm
