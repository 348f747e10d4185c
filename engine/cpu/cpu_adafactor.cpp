// defines: CPU Adafactor update (engine/adafactor_math.h; the reference for the CUDA kernels)
#include <cmath>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"

namespace llm {

// Sums in double, each in a fixed order, so the update is the same run to run.
void CpuBackend::adafactor(Tensor& param, const Tensor& grad, Tensor& row, Tensor& col, const AdafactorArgs& args) {
  OpTimer timer("adafactor");
  require_f32("adafactor", param);
  require_f32("adafactor", grad);
  require_f32("adafactor", row);
  const int64_t n = param.numel();
  LLM_CHECK(grad.numel() == n, "adafactor: grad " + grad.str() + " for " + param.str());
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* r_avg = row.data<float>();
  // u = factor x g, the update before its clip: factor is rsqrt(row / mean(row)) x rsqrt(col) of
  // the element's row and column for a matrix, rsqrt of its own average for a vector.
  std::vector<float> row_factor, col_factor;
  const int64_t C = col.defined() ? col.numel() : 1, R = n / C;
  if (col.defined()) {
    require_f32("adafactor", col);
    LLM_CHECK(row.numel() * C == n, "adafactor: row " + row.str() + " and col " + col.str() + " for " + param.str());
    float* c_avg = col.data<float>();
#pragma omp parallel for if (n >= kMinParallelElements)
    for (int64_t r = 0; r < R; r++) {
      double sum = 0.0;
      for (int64_t c = 0; c < C; c++) sum += adafactor_square(adafactor_grad(g[r * C + c], args), args);
      r_avg[r] = adafactor_average(r_avg[r], static_cast<float>(sum / C), args);
    }
#pragma omp parallel for if (n >= kMinParallelElements)
    for (int64_t c = 0; c < C; c++) {
      double sum = 0.0;
      for (int64_t r = 0; r < R; r++) sum += adafactor_square(adafactor_grad(g[r * C + c], args), args);
      c_avg[c] = adafactor_average(c_avg[c], static_cast<float>(sum / R), args);
    }
    double row_sum = 0.0;
    for (int64_t r = 0; r < R; r++) row_sum += r_avg[r];
    const float row_mean = static_cast<float>(row_sum / R);
    row_factor.resize(R);
    col_factor.resize(C);
    for (int64_t r = 0; r < R; r++) row_factor[r] = 1.0f / std::sqrt(r_avg[r] / row_mean);
    for (int64_t c = 0; c < C; c++) col_factor[c] = 1.0f / std::sqrt(c_avg[c]);
  } else {
    LLM_CHECK(row.numel() == n, "adafactor: second moment " + row.str() + " for " + param.str());
#pragma omp parallel for if (n >= kMinParallelElements)
    for (int64_t i = 0; i < n; i++) r_avg[i] = adafactor_average(r_avg[i], adafactor_square(adafactor_grad(g[i], args), args), args);
  }
  auto update = [&](int64_t r, int64_t c) {
    const int64_t i = r * C + c;
    const float factor = col.defined() ? row_factor[r] * col_factor[c] : 1.0f / std::sqrt(r_avg[i]);
    return factor * adafactor_grad(g[i], args);
  };
  std::vector<double> row_squares(R);
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t r = 0; r < R; r++) {
    double sum = 0.0;
    for (int64_t c = 0; c < C; c++) {
      const double u = update(r, c);
      sum += u * u;
    }
    row_squares[r] = sum;
  }
  double squares = 0.0;
  for (double s : row_squares) squares += s;
  const float divisor = adafactor_divisor(squares, static_cast<double>(n), args);
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t r = 0; r < R; r++)
    for (int64_t c = 0; c < C; c++) p[r * C + c] = adafactor_apply(p[r * C + c], update(r, c), divisor, args);
}

}  // namespace llm
