// NF4, QLoRA's 4-bit NormalFloat (Dettmers et al., "QLoRA"), stored exactly as bitsandbytes'
// quantize_4bit(quant_type="nf4", blocksize=64) stores a weight: one absmax per 64 elements,
// each element the nearest of 16 code values times its block's absmax, two codes per byte.
// With double quantisation (compress_statistics, transformers' bnb_4bit_use_double_quant) the
// absmax values themselves are stored as bnb's 8-bit dynamic codes of (absmax - mean), with one
// f32 scale per 256 of them. Quantisation runs on the host (once, at load time: the same weight
// always gives the same codes); dequantisation is a backend kernel (engine/backend.h). The weight
// is a QuantWeight of format nf4 (engine/quant_weight.h).
#pragma once
#include <cstdint>

#include "engine/host_device.h"
#include "engine/quant_weight.h"

namespace llm {

constexpr int64_t kNf4Block = 64;          // elements per absmax (bnb's default blocksize)
constexpr int64_t kNf4AbsmaxBlock = 256;   // absmax values per f32 scale when double-quantised

// bitsandbytes' get_4bit_type("nf4"): quantiles of N(0, 1) scaled to [-1, 1], ascending, 0 exact.
constexpr float kNf4Code[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};

// Bytes of an NF4 weight of n elements: half a byte each, then an f32 absmax per block, or a u8
// code per block plus an f32 scale per 256 blocks and the f32 offset when double-quantised.
size_t nf4_nbytes(int64_t n, bool double_quant);

// Quantises w (f32 or bf16, any device; computed on the host) as bitsandbytes does. The result
// lives on w's device.
QuantWeight nf4_quantize(const Tensor& w, bool double_quant);
// Throws unless the tensors have the dtypes and sizes `shape` needs (a kernel's precondition).
void require_nf4_weight(const QuantWeight& w);

// bnb's 4-bit quantiser: the number of midpoints between neighbouring codes that lie below x
// (x in [-1, 1]; a tie goes to the lower code).
inline uint8_t nf4_code_of(float x) {
  uint8_t code = 0;
  for (int i = 0; i < 15; i++) code += (kNf4Code[i] + kNf4Code[i + 1]) / 2.0f < x;
  return code;
}

// A double-quantised block's absmax: map value x scale + offset, two f32 roundings as bnb's
// dequantize_blockwise then `absmax += offset` (never one fused multiply-add: the CPU and CUDA
// kernels must agree bit for bit).
LLM_HOST_DEVICE float nf4_absmax_value(float map_value, float scale, float offset) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(__fmul_rn(map_value, scale), offset);
#else
  return map_value * scale + offset;
#endif
}

// Element `i`'s value from its byte and its block's absmax, in f32 as bnb computes it. Written
// once for the CPU and CUDA kernels.
LLM_HOST_DEVICE float nf4_value(const uint8_t* codes, int64_t i, float absmax, const float* code_map) {
  const uint8_t byte = codes[i / 2];
  return code_map[i % 2 == 0 ? byte >> 4 : byte & 0xF] * absmax;
}

}  // namespace llm
