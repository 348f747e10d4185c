// Adafactor's factored running means on the CPU, shared by Adafactor's update and CAME's (its
// second moment and its instability): each sum in double in a fixed order, so an update is the
// same run to run.
#pragma once
#include <cmath>
#include <vector>

#include "engine/adafactor_math.h"
#include "engine/cpu/cpu_backend.h"

namespace llm {

// Each element's scale from the running means: rsqrt(row / mean(row)) x rsqrt(col) of its row and
// column for a matrix, rsqrt of its own mean for a vector.
struct FactoredScale {
  std::vector<float> row_factor, col_factor;  // a matrix's
  const float* own = nullptr;                 // a vector's means
  int64_t C = 1;
  float at(int64_t i) const {
    return own ? 1.0f / std::sqrt(own[i]) : row_factor[i / C] * col_factor[i % C];
  }
};

// Takes term(i), element i's new term, into the running means at `rates` (adafactor_average): a
// matrix's per row (row: R) and per column (col: C), a vector's per element (row: n, col
// undefined). Returns the scales from the new means.
template <class Term>
FactoredScale update_factored(Tensor& row, Tensor& col, int64_t n, const Term& term, const AdafactorArgs& rates) {
  require_f32("factored moment", row);
  FactoredScale scale;
  float* r_avg = row.data<float>();
  if (!col.defined()) {
    LLM_CHECK(row.numel() == n, "factored moment: " + row.str() + " for " + std::to_string(n) + " elements");
#pragma omp parallel for if (n >= kMinParallelElements)
    for (int64_t i = 0; i < n; i++) r_avg[i] = adafactor_average(r_avg[i], term(i), rates);
    scale.own = r_avg;
    return scale;
  }
  require_f32("factored moment", col);
  const int64_t C = col.numel(), R = n / C;
  LLM_CHECK(row.numel() * C == n, "factored moment: row " + row.str() + " and col " + col.str() + " for " +
                                      std::to_string(n) + " elements");
  float* c_avg = col.data<float>();
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t r = 0; r < R; r++) {
    double sum = 0.0;
    for (int64_t c = 0; c < C; c++) sum += term(r * C + c);
    r_avg[r] = adafactor_average(r_avg[r], static_cast<float>(sum / C), rates);
  }
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t c = 0; c < C; c++) {
    double sum = 0.0;
    for (int64_t r = 0; r < R; r++) sum += term(r * C + c);
    c_avg[c] = adafactor_average(c_avg[c], static_cast<float>(sum / R), rates);
  }
  double row_sum = 0.0;
  for (int64_t r = 0; r < R; r++) row_sum += r_avg[r];
  const float row_mean = static_cast<float>(row_sum / R);
  scale.C = C;
  scale.row_factor.resize(R);
  scale.col_factor.resize(C);
  for (int64_t r = 0; r < R; r++) scale.row_factor[r] = 1.0f / std::sqrt(r_avg[r] / row_mean);
  for (int64_t c = 0; c < C; c++) scale.col_factor[c] = 1.0f / std::sqrt(c_avg[c]);
  return scale;
}

// The clip's divisor (adafactor_divisor) of the update u(i) over n elements, its squares summed
// per row of `width` elements, then the rows in order.
template <class Update>
float clip_divisor(int64_t n, int64_t width, const Update& u, const AdafactorArgs& args) {
  const int64_t rows = n / width;
  std::vector<double> row_squares(rows);
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t r = 0; r < rows; r++) {
    double sum = 0.0;
    for (int64_t c = 0; c < width; c++) {
      const double v = u(r * width + c);
      sum += v * v;
    }
    row_squares[r] = sum;
  }
  double squares = 0.0;
  for (double s : row_squares) squares += s;
  return adafactor_divisor(squares, static_cast<double>(n), args);
}

}  // namespace llm
