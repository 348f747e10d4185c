// defines: QuantWeight's size and device move, quantize_weight and dequantize (each format's
// quantiser on the host, its backend kernel for the way back)
#include "engine/quant_weight.h"

#include "engine/backend.h"
#include "engine/check.h"
#include "engine/int8.h"
#include "engine/nf4.h"

namespace llm {

int64_t QuantWeight::blocks() const {
  return format == QuantFormat::int8 ? shape[0] : (numel() + kNf4Block - 1) / kNf4Block;
}

size_t quant_nbytes(QuantFormat format, int64_t rows, int64_t cols, bool double_quant) {
  return format == QuantFormat::int8 ? int8_nbytes(rows, cols) : nf4_nbytes(rows * cols, double_quant);
}

size_t QuantWeight::nbytes() const { return quant_nbytes(format, shape[0], numel() / shape[0], double_quant()); }

QuantWeight QuantWeight::to(Device device) const {
  QuantWeight w = *this;
  w.codes = codes.to(device);
  w.absmax = absmax.to(device);
  if (double_quant()) w.absmax_scale = absmax_scale.to(device);
  return w;
}

const char* quant_format_name(QuantFormat f) { return f == QuantFormat::int8 ? "int8" : "NF4"; }

QuantWeight quant_layout(const Shape& shape, QuantFormat format, bool double_quant, Device device) {
  QuantWeight w;
  w.format = format;
  w.shape = shape;
  const bool nf4 = format == QuantFormat::nf4;
  w.codes = Tensor::released({nf4 ? (w.numel() + 1) / 2 : w.numel()}, DType::u8, device);
  w.absmax = Tensor::released({w.blocks()}, nf4 && double_quant ? DType::u8 : DType::f32, device);
  if (nf4 && double_quant)
    w.absmax_scale = Tensor::released({(w.blocks() + kNf4AbsmaxBlock - 1) / kNf4AbsmaxBlock}, DType::f32, device);
  return w;
}

QuantWeight quantize_weight(const Tensor& w, QuantFormat format, bool double_quant) {
  return format == QuantFormat::int8 ? int8_quantize(w) : nf4_quantize(w, double_quant);
}

Tensor dequantize(const QuantWeight& w, DType dtype) {
  Tensor out = Tensor::empty(w.shape, dtype, w.codes.device());
  if (w.format == QuantFormat::int8) {
    require_int8_weight(w);
    backend(out.device()).int8_dequantize(w, out);
  } else {
    require_nf4_weight(w);
    backend(out.device()).nf4_dequantize(w, out);
  }
  return out;
}

}  // namespace llm
