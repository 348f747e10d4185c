// defines: CPU scale_columns, scale_rows, column_dot, row_inverse_norms (DoRA's per-output-feature scaling)
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"

namespace llm {

namespace {
// out = x * s, s f32 indexed by each element's row (per_row) or column.
void scale_lines(const char* op, const Tensor& x, const Tensor& s, Tensor& out, bool per_row) {
  require_f32(op, x);
  OpTimer timer(op);
  const int64_t C = x.size(-1), N = x.numel() / C;
  const float* px = x.data<float>();
  const float* ps = s.data<float>();
  float* po = out.data<float>();
#pragma omp parallel for if (x.numel() >= kMinParallelElements)
  for (int64_t i = 0; i < N; i++)
    for (int64_t c = 0; c < C; c++) po[i * C + c] = px[i * C + c] * ps[per_row ? i : c];
}
}  // namespace

void CpuBackend::scale_columns(const Tensor& x, const Tensor& s, Tensor& out) {
  scale_lines("scale_columns", x, s, out, false);
}

void CpuBackend::scale_rows(const Tensor& x, const Tensor& s, Tensor& out) { scale_lines("scale_rows", x, s, out, true); }

// Rows in order into one f64 sum per column: the result does not depend on the thread count,
// which splits the columns only.
void CpuBackend::column_dot(const Tensor& a, const Tensor& b, Tensor& out) {
  require_f32("column_dot", a);
  OpTimer timer("column_dot");
  const int64_t C = a.size(-1), N = a.numel() / C;
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* po = out.data<float>();
  constexpr int64_t kColumns = 256;  // columns per task: a row's slice stays in one cache line run
#pragma omp parallel for if (a.numel() >= kMinParallelElements)
  for (int64_t c0 = 0; c0 < C; c0 += kColumns) {
    const int64_t c1 = std::min(C, c0 + kColumns);
    std::vector<double> acc(c1 - c0, 0.0);
    for (int64_t i = 0; i < N; i++)
      for (int64_t c = c0; c < c1; c++) acc[c - c0] += static_cast<double>(pa[i * C + c]) * pb[i * C + c];
    for (int64_t c = c0; c < c1; c++) po[c] = static_cast<float>(acc[c - c0]);
  }
}

void CpuBackend::row_inverse_norms(const Tensor& w, Tensor& out) {
  require_f32("row_inverse_norms", w);
  OpTimer timer("row_inverse_norms");
  const int64_t C = w.size(-1), R = w.numel() / C;
  const float* pw = w.data<float>();
  float* po = out.data<float>();
#pragma omp parallel for if (w.numel() >= kMinParallelElements)
  for (int64_t r = 0; r < R; r++) {
    double ss = 0.0;
    for (int64_t c = 0; c < C; c++) ss += static_cast<double>(pw[r * C + c]) * pw[r * C + c];
    po[r] = static_cast<float>(1.0 / std::sqrt(ss));
  }
}

}  // namespace llm
