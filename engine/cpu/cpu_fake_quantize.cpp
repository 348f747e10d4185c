// defines: CPU fake quantisation for quantisation-aware training (engine/fake_quantize_math.h):
// int4 weight groups (min-max and symmetric), int8 and fp8 rows, forward and backward; mxfp4
// blocks; fp8 training's tensorwise cast (engine/fp8_math.h)
#include <algorithm>
#include <cmath>
#include <utility>

#include "engine/cpu/cpu_backend.h"
#include "engine/fake_quantize_math.h"
#include "engine/op_timer.h"

namespace llm {

namespace {
float identity(float x) { return x; }

Int4Group int4_group_of(const float* w, int64_t group) {
  float lo = w[0], hi = w[0];
  for (int64_t i = 1; i < group; i++) {
    lo = std::min(lo, w[i]);
    hi = std::max(hi, w[i]);
  }
  return int4_group(lo, hi);
}

// The largest magnitude of n values, and how many reach it.
std::pair<float, int> abs_max_of(const float* x, int64_t n) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; i++) amax = std::max(amax, std::fabs(x[i]));
  int ties = 0;
  for (int64_t i = 0; i < n; i++) ties += std::fabs(x[i]) == amax;
  return {amax, ties};
}

Int8Row int8_row_of(const float* x, int64_t n) {
  float lo = x[0], hi = x[0];
  for (int64_t i = 1; i < n; i++) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  return int8_row(lo, hi, identity);
}
}  // namespace

void CpuBackend::fake_quant_int4_forward(const Tensor& w, int64_t group, Tensor& out) {
  require_f32("fake_quant_int4", w);
  OpTimer timer("fake_quant_int4");
  const float* in = w.data<float>();
  float* o = out.data<float>();
  const int64_t groups = w.numel() / group;
#pragma omp parallel for
  for (int64_t gi = 0; gi < groups; gi++) {
    const float* src = in + gi * group;
    const Int4Group g = int4_group_of(src, group);
    for (int64_t i = 0; i < group; i++) o[gi * group + i] = int4_fake_quant(src[i], g);
  }
}

void CpuBackend::fake_quant_int4_backward(const Tensor& w, const Tensor& dout, int64_t group, Tensor& dw) {
  require_f32("fake_quant_int4", w);
  OpTimer timer("fake_quant_int4 backward");
  const float* in = w.data<float>();
  const float* dy = dout.data<float>();
  float* dx = dw.data<float>();
  const int64_t groups = w.numel() / group;
#pragma omp parallel for
  for (int64_t gi = 0; gi < groups; gi++) {
    const int64_t base = gi * group;
    const Int4Group g = int4_group_of(in + base, group);
    float to_scale = 0.0f, to_min = 0.0f;
    int64_t n_min = 0, n_max = 0;
    for (int64_t i = 0; i < group; i++) {
      const Int4Partials p = int4_partials(in[base + i], dy[base + i], g);
      dx[base + i] = p.direct;
      to_scale += p.to_scale;
      to_min += p.to_min;
      n_min += in[base + i] == g.lo;
      n_max += in[base + i] == g.hi;
    }
    float d_min, d_max;
    int4_extreme_grads(g, to_scale, to_min, d_min, d_max);
    for (int64_t i = 0; i < group; i++) {
      if (in[base + i] == g.lo) dx[base + i] += d_min / static_cast<float>(n_min);
      if (in[base + i] == g.hi) dx[base + i] += d_max / static_cast<float>(n_max);
    }
  }
}

void CpuBackend::fake_quant_int8_forward(const Tensor& x, Tensor& out) {
  require_f32("fake_quant_int8", x);
  OpTimer timer("fake_quant_int8");
  const int64_t rows = x.size(0), n = x.size(1);
  const float* in = x.data<float>();
  float* o = out.data<float>();
#pragma omp parallel for
  for (int64_t r = 0; r < rows; r++) {
    const Int8Row q = int8_row_of(in + r * n, n);
    for (int64_t i = 0; i < n; i++) o[r * n + i] = int8_fake_quant(in[r * n + i], q);
  }
}

void CpuBackend::fake_quant_int8_backward(const Tensor& x, const Tensor& dout, Tensor& dx) {
  require_f32("fake_quant_int8", x);
  OpTimer timer("fake_quant_int8 backward");
  const int64_t rows = x.size(0), n = x.size(1);
  const float* in = x.data<float>();
  const float* dy = dout.data<float>();
  float* d = dx.data<float>();
#pragma omp parallel for
  for (int64_t r = 0; r < rows; r++) {
    const Int8Row q = int8_row_of(in + r * n, n);
    for (int64_t i = 0; i < n; i++) d[r * n + i] = int8_fake_quant_grad(in[r * n + i], dy[r * n + i], q, identity);
  }
}

void CpuBackend::fake_quant_fp8_rows_forward(const Tensor& x, float lower_bound, Tensor& out) {
  require_f32("fake_quant_fp8_rows", x);
  OpTimer timer("fake_quant_fp8_rows");
  const int64_t n = x.size(-1), rows = n == 0 ? 0 : x.numel() / n;
  const float* in = x.data<float>();
  float* o = out.data<float>();
#pragma omp parallel for
  for (int64_t r = 0; r < rows; r++) {
    const Fp8Row q = fp8_row(abs_max_of(in + r * n, n).first, lower_bound, identity);
    for (int64_t i = 0; i < n; i++) o[r * n + i] = fp8_row_fake_quant(in[r * n + i], q);
  }
}

void CpuBackend::fake_quant_fp8_rows_backward(const Tensor& x, const Tensor& dout, float lower_bound, Tensor& dx) {
  require_f32("fake_quant_fp8_rows", x);
  OpTimer timer("fake_quant_fp8_rows backward");
  const int64_t n = x.size(-1), rows = n == 0 ? 0 : x.numel() / n;
  const float* in = x.data<float>();
  const float* dy = dout.data<float>();
  float* d = dx.data<float>();
#pragma omp parallel for
  for (int64_t r = 0; r < rows; r++) {
    const float* row = in + r * n;
    const auto [amax, ties] = abs_max_of(row, n);
    const Fp8Row q = fp8_row(amax, lower_bound, identity);
    float to_scale = 0.0f;
    for (int64_t i = 0; i < n; i++) {
      const Fp8RowPartials p = fp8_row_partials(row[i], dy[r * n + i], q);
      d[r * n + i] = p.direct;
      to_scale += p.to_scale;
    }
    const float d_amax = fp8_row_amax_grad(q, to_scale, identity);
    for (int64_t i = 0; i < n; i++) d[r * n + i] += amax_share(row[i], amax, d_amax, ties);
  }
}

void CpuBackend::fake_quant_int4_symmetric_forward(const Tensor& w, int64_t group, Tensor& out) {
  require_f32("fake_quant_int4_symmetric", w);
  OpTimer timer("fake_quant_int4_symmetric");
  const float* in = w.data<float>();
  float* o = out.data<float>();
  const int64_t groups = w.numel() / group;
#pragma omp parallel for
  for (int64_t gi = 0; gi < groups; gi++) {
    const float* src = in + gi * group;
    const Int4SymmetricGroup g = int4_symmetric_group(abs_max_of(src, group).first, identity);
    for (int64_t i = 0; i < group; i++) o[gi * group + i] = int4_symmetric_fake_quant(src[i], g, identity);
  }
}

void CpuBackend::fake_quant_int4_symmetric_backward(const Tensor& w, const Tensor& dout, int64_t group, Tensor& dw) {
  require_f32("fake_quant_int4_symmetric", w);
  OpTimer timer("fake_quant_int4_symmetric backward");
  const float* in = w.data<float>();
  const float* dy = dout.data<float>();
  float* dx = dw.data<float>();
  const int64_t groups = w.numel() / group;
#pragma omp parallel for
  for (int64_t gi = 0; gi < groups; gi++) {
    const int64_t base = gi * group;
    const auto [amax, ties] = abs_max_of(in + base, group);
    const Int4SymmetricGroup g = int4_symmetric_group(amax, identity);
    float to_inverse = 0.0f, to_scale = 0.0f;
    for (int64_t i = 0; i < group; i++) {
      const Int4SymmetricPartials p = int4_symmetric_partials(in[base + i], dy[base + i], g, identity);
      dx[base + i] = p.direct;
      to_inverse += p.to_inverse;
      to_scale += p.to_scale;
    }
    const float d_amax = int4_symmetric_amax_grad(g, to_inverse, to_scale, identity);
    for (int64_t i = 0; i < group; i++) dx[base + i] += amax_share(in[base + i], amax, d_amax, ties);
  }
}

void CpuBackend::fake_quant_mxfp4(const Tensor& x, Tensor& out) {
  require_f32("fake_quant_mxfp4", x);
  OpTimer timer("fake_quant_mxfp4");
  const float* in = x.data<float>();
  float* o = out.data<float>();
  const int64_t blocks = x.numel() / kMxBlock;
#pragma omp parallel for
  for (int64_t b = 0; b < blocks; b++) {
    const float* src = in + b * kMxBlock;
    float amax = 0.0f;
    bool nan = false;  // torch's amax propagates NaN
    for (int i = 0; i < kMxBlock; i++) {
      nan = nan || std::isnan(src[i]);
      amax = std::max(amax, std::fabs(src[i]));
    }
    const int exponent = mxfp4_block_exponent(nan ? NAN : amax);
    for (int i = 0; i < kMxBlock; i++) o[b * kMxBlock + i] = mxfp4_fake_quant(src[i], exponent);
  }
}

void CpuBackend::fake_quant_fp8(const Tensor& x, Fp8Format format, Tensor& out) {
  require_f32("fake_quant_fp8", x);
  OpTimer timer("fake_quant_fp8");
  const float* in = x.data<float>();
  float* o = out.data<float>();
  const int64_t n = x.numel();
  float amax = 0.0f;
#pragma omp parallel for reduction(max : amax)
  for (int64_t i = 0; i < n; i++) amax = std::max(amax, std::fabs(in[i]));
  const Fp8Spec spec = fp8_spec(format);
  const float scale = fp8_scale(amax, spec), inverse = 1.0f / scale;
#pragma omp parallel for
  for (int64_t i = 0; i < n; i++) o[i] = fake_fp8(in[i], scale, inverse, spec);
}

}  // namespace llm
