// defines: quantise_basis, dequantise_basis, BasisSchedule (see the header)
#include "engine/qgalore_basis.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/backend.h"
#include "engine/check.h"
#include "engine/ops/gemm_call.h"

namespace llm {

QGaloreBasis quantise_basis(const std::vector<float>& basis, const Shape& shape, int bits, int64_t group, Device device) {
  const int64_t n = shape_numel(shape), groups = n / group;
  LLM_CHECK(group >= 1 && n % group == 0 && bits >= 1 && bits <= 8, "quantise_basis: groups must divide the basis");
  const float max_int = static_cast<float>((1 << bits) - 1);
  std::vector<float> codes(static_cast<size_t>(n)), scales(static_cast<size_t>(groups)), zeros(scales.size());
  for (int64_t g = 0; g < groups; g++) {
    const auto first = basis.begin() + g * group, last = first + group;
    const float lo = *std::min_element(first, last), hi = *std::max_element(first, last);
    const float scale = std::max(hi - lo, 1e-5f) / max_int;
    const float zero = std::clamp(-std::nearbyint(lo / scale), 0.0f, max_int);
    for (int64_t k = g * group; k < (g + 1) * group; k++)
      codes[static_cast<size_t>(k)] = std::clamp(std::nearbyint(basis[static_cast<size_t>(k)] / scale) + zero, 0.0f, max_int);
    scales[static_cast<size_t>(g)] = scale;
    zeros[static_cast<size_t>(g)] = zero;
  }
  QGaloreBasis q;
  q.codes = Tensor::from_floats(codes, shape).to(DType::u8).to(device);
  q.scales = Tensor::from_floats(scales, {groups}).to(device);
  q.zeros = Tensor::from_floats(zeros, {groups, 1}).to(device);
  return q;
}

// (code - zero) exactly (small whole numbers: a rank-1 GEMM subtracts each group's zero point),
// then times the group's scale: the one rounding torch's scales * (codes - zeros) makes.
Tensor dequantise_basis(const QGaloreBasis& q) {
  Backend& be = backend(q.codes.device());
  Tensor basis = Tensor::empty(q.codes.shape(), DType::f32, q.codes.device());
  be.cast(q.codes, basis);
  const int64_t groups = q.scales.numel();
  Tensor rows = basis.reshape({groups, -1});
  const Tensor ones = Tensor::full({1, rows.size(1)}, 1.0f, DType::f32, q.codes.device());
  gemm(matrices(q.zeros), false, matrices(ones), false, rows, 1, 1.0f, -1.0f);
  be.scale_rows(rows, q.scales, rows);
  return basis;
}

// torch's cosine_similarity of two unit vectors (each clamped at norm 1e-8), read as a double.
void BasisSchedule::record(const std::vector<float>& top_now, int64_t queue_size, double cos_threshold, int64_t gamma) {
  if (has_top) {
    const std::vector<float> last = top.to_floats();
    LLM_CHECK(last.size() == top_now.size(), "BasisSchedule: the top vectors differ in length");
    double dot = 0, last_sq = 0, now_sq = 0;
    for (size_t k = 0; k < last.size(); k++) {
      dot += static_cast<double>(last[k]) * top_now[k];
      last_sq += static_cast<double>(last[k]) * last[k];
      now_sq += static_cast<double>(top_now[k]) * top_now[k];
    }
    const double cosine = dot / (std::max(std::sqrt(last_sq), 1e-8) * std::max(std::sqrt(now_sq), 1e-8));
    if (static_cast<int64_t>(cosines.size()) == queue_size) cosines.erase(cosines.begin());
    cosines.push_back(static_cast<double>(static_cast<float>(cosine)));
    double sum = 0;
    for (double c : cosines) sum += c;
    if (static_cast<int64_t>(cosines.size()) == queue_size && sum / static_cast<double>(queue_size) >= cos_threshold)
      gap *= gamma;
  }
  top.copy_from(Tensor::from_floats(top_now, {static_cast<int64_t>(top_now.size())}));
  has_top = true;
}

std::string BasisSchedule::to_text() const {
  std::string text = fmt::format("gap {} top {} cosines", gap, has_top ? 1 : 0);
  for (double c : cosines) text += fmt::format(" {:.17g}", c);
  return text;
}

void BasisSchedule::from_text(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string gap_word, top_word, cosines_word;
  int64_t gap_read = 0, top_read = -1;
  in >> gap_word >> gap_read >> top_word >> top_read >> cosines_word;
  if (!in || gap_word != "gap" || top_word != "top" || cosines_word != "cosines" || gap_read < 1 ||
      (top_read != 0 && top_read != 1))
    throw std::runtime_error("metadata " + key + ": expected 'gap N top 0|1 cosines ...' (Q-GaLore's basis schedule)");
  std::vector<double> read;
  for (double c; in >> c;) read.push_back(c);
  if (!in.eof())
    throw std::runtime_error("metadata " + key + ": expected numbers after 'cosines' (Q-GaLore's basis schedule)");
  gap = gap_read;
  has_top = top_read == 1;
  cosines = std::move(read);
}

}  // namespace llm
