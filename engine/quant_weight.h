// A frozen weight stored in one of bitsandbytes' two formats for a base model's linear layers:
// NF4 (load_in_4bit, QLoRA: engine/nf4.h) or LLM.int8's row-wise int8 (load_in_8bit:
// engine/int8.h). Both are byte codes plus per-block scales; the layer that uses one dequantises
// it whole into the compute dtype for a GEMM (quantized_linear, engine/ops.h), so one op, one
// device move and one ZeRO-3 layout serve both.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace llm {

enum class QuantFormat : uint8_t { nf4, int8 };

struct QuantWeight {
  QuantFormat format = QuantFormat::nf4;
  Shape shape;  // of the original weight, (out, in) for a linear layer
  // u8. nf4: ceil(numel / 2), element i in byte i / 2, the high nibble for even i, the low for
  // odd i (bnb's order; an odd count pads the last low nibble with code 7, the value 0).
  // int8: numel, row-major, each byte an int8 in two's complement (bnb's CB).
  Tensor codes;
  // nf4: per kNf4Block elements, f32 absmax, or with double quantisation u8 codes into the signed
  // dynamic map (engine/quant_map.h) of absmax - absmax_offset. int8: f32 per row (bnb's SCB).
  Tensor absmax;
  Tensor absmax_scale;  // nf4 with double quant: f32 (ceil(blocks / kNf4AbsmaxBlock)); else undefined
  float absmax_offset = 0.0f;  // nf4 with double quant: the mean of the absmax values

  bool defined() const { return codes.defined(); }
  bool double_quant() const { return absmax_scale.defined(); }
  int64_t numel() const { return shape_numel(shape); }
  int64_t blocks() const;  // scales: nf4 blocks of kNf4Block, int8 rows
  size_t nbytes() const;   // codes and scales: what the weight costs in memory
  QuantWeight to(Device device) const;
};

const char* quant_format_name(QuantFormat f);  // "NF4", "int8"
// Bytes a rows x cols weight takes in `format` (double_quant: nf4 only): the memory planner's
// count and QuantWeight::nbytes.
size_t quant_nbytes(QuantFormat format, int64_t rows, int64_t cols, bool double_quant);

// The tensors quantize_weight makes for a weight of `shape`, without bytes (Tensor::released):
// ZeRO-3's sharded start-up lays out the frozen base before any weight is drawn or read.
QuantWeight quant_layout(const Shape& shape, QuantFormat format, bool double_quant, Device device);
// Quantises w (f32 or bf16, any device; computed on the host) as bitsandbytes does; double_quant
// applies to nf4 only. The result lives on w's device.
QuantWeight quantize_weight(const Tensor& w, QuantFormat format, bool double_quant);
// The weight back in `dtype` (f32 or bf16) on its device, in f32 arithmetic as bnb's own
// dequantisation, rounded once.
Tensor dequantize(const QuantWeight& w, DType dtype);

}  // namespace llm
