// defines: QGaloreBasis, quantise_basis, dequantise_basis, BasisSchedule: what Q-GaLore (Zhang
// et al. 2024, q-galore-torch 1.0, Axolotl's q_galore_adamw8bit) adds to GaLore's basis
// (engine/galore.h). The basis is kept as `bits`-bit codes (one a byte, as q-galore-torch keeps
// them) with an f32 scale and zero point per group of elements, asymmetric between the group's
// min and max, and dequantised for each use; and its update gap grows by gamma once the top
// singular vectors of the last queue_size recomputations were each, on average, at least
// cos_threshold alike (cosine similarity) with the one before.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace llm {

struct QGaloreBasis {
  Tensor codes;   // u8, the basis' shape
  Tensor scales;  // f32 (groups)
  Tensor zeros;   // f32 (groups, 1): zero points, whole numbers
};

// `basis` (row-major, `shape`) in groups of `group` elements (which divides its size), each coded
// as clamp(round(x / scale) + zero, 0, 2^bits - 1) with scale = max(max - min, 1e-5) / (2^bits -
// 1) and zero = clamp(-round(min / scale), 0, 2^bits - 1), rounding half to even, in f32 as torch.
QGaloreBasis quantise_basis(const std::vector<float>& basis, const Shape& shape, int bits, int64_t group, Device device);
// scale x (code - zero) for every element, f32 of the codes' shape on their device.
Tensor dequantise_basis(const QGaloreBasis& q);

// The update gap of one projected matrix and what decides its growth.
struct BasisSchedule {
  int64_t gap = 0;
  std::vector<double> cosines;  // the last queue_size similarities, oldest first
  bool has_top = false;         // top holds the last basis' top singular vector
  Tensor top;                   // f32 (n) of a right basis' first row, (m) of a left basis' first column

  // A basis was recomputed with top singular vector `top_now`: its similarity with the last one's
  // joins the queue (from the second basis on), and when the queue is full and its mean is at
  // least cos_threshold the gap becomes int(gap x gamma).
  void record(const std::vector<float>& top_now, int64_t queue_size, double cos_threshold, int64_t gamma);
  // "gap 400 top 1 cosines 0.91 0.88": a checkpoint's scalar state, and back (throws
  // std::runtime_error naming `key` on malformed text).
  std::string to_text() const;
  void from_text(const std::string& text, const std::string& key);
};

}  // namespace llm
