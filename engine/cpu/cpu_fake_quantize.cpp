// defines: CPU fake quantisation for quantisation-aware training (engine/fake_quantize_math.h):
// int4 weight groups (min-max and symmetric), int8 and fp8 rows, forward and backward; mxfp4
// blocks; ternary weight rows and int8 absmax input rows; fp8 training's tensorwise cast
// (engine/fp8_math.h)
#include <algorithm>
#include <cmath>
#include <utility>

#include "engine/cpu/cpu_backend.h"
#include "engine/fake_quantize_math.h"
#include "engine/op_timer.h"

namespace llm {

namespace {
float identity(float x) { return x; }

// Calls body(first) for the first index of each span of n consecutive values of x (a weight
// group, an activation row or an MX block), spans in parallel, timed as the op `name`.
template <class Body>
void for_each_span(const char* name, const Tensor& x, int64_t n, Body body) {
  require_f32(name, x);
  OpTimer timer(name);
  const int64_t spans = n == 0 ? 0 : x.numel() / n;
#pragma omp parallel for
  for (int64_t s = 0; s < spans; s++) body(s * n);
}

// The smallest and largest of n values.
std::pair<float, float> min_max_of(const float* x, int64_t n) {
  float lo = x[0], hi = x[0];
  for (int64_t i = 1; i < n; i++) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  return {lo, hi};
}

// The largest magnitude of n values, and how many reach it.
std::pair<float, int> abs_max_of(const float* x, int64_t n) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; i++) amax = std::max(amax, std::fabs(x[i]));
  int ties = 0;
  for (int64_t i = 0; i < n; i++) ties += std::fabs(x[i]) == amax;
  return {amax, ties};
}

Int4Group int4_group_of(const float* w, int64_t group) {
  const auto [lo, hi] = min_max_of(w, group);
  return int4_group(lo, hi);
}

Int8Row int8_row_of(const float* x, int64_t n) {
  const auto [lo, hi] = min_max_of(x, n);
  return int8_row(lo, hi, identity);
}
}  // namespace

void CpuBackend::fake_quant_int4_forward(const Tensor& w, int64_t group, Tensor& out) {
  const float* in = w.data<float>();
  float* o = out.data<float>();
  for_each_span("fake_quant_int4", w, group, [&](int64_t base) {
    const Int4Group g = int4_group_of(in + base, group);
    for (int64_t i = base; i < base + group; i++) o[i] = int4_fake_quant(in[i], g);
  });
}

void CpuBackend::fake_quant_int4_backward(const Tensor& w, const Tensor& dout, int64_t group, Tensor& dw) {
  const float* in = w.data<float>();
  const float* dy = dout.data<float>();
  float* dx = dw.data<float>();
  for_each_span("fake_quant_int4 backward", w, group, [&](int64_t base) {
    const Int4Group g = int4_group_of(in + base, group);
    float to_scale = 0.0f, to_min = 0.0f;
    int64_t n_min = 0, n_max = 0;
    for (int64_t i = base; i < base + group; i++) {
      const Int4Partials p = int4_partials(in[i], dy[i], g);
      dx[i] = p.direct;
      to_scale += p.to_scale;
      to_min += p.to_min;
      n_min += in[i] == g.lo;
      n_max += in[i] == g.hi;
    }
    float d_min, d_max;
    int4_extreme_grads(g, to_scale, to_min, d_min, d_max);
    for (int64_t i = base; i < base + group; i++) {
      if (in[i] == g.lo) dx[i] += d_min / static_cast<float>(n_min);
      if (in[i] == g.hi) dx[i] += d_max / static_cast<float>(n_max);
    }
  });
}

void CpuBackend::fake_quant_int8_forward(const Tensor& x, Tensor& out) {
  const int64_t n = x.size(1);
  const float* in = x.data<float>();
  float* o = out.data<float>();
  for_each_span("fake_quant_int8", x, n, [&](int64_t base) {
    const Int8Row q = int8_row_of(in + base, n);
    for (int64_t i = base; i < base + n; i++) o[i] = int8_fake_quant(in[i], q);
  });
}

void CpuBackend::fake_quant_int8_backward(const Tensor& x, const Tensor& dout, Tensor& dx) {
  const int64_t n = x.size(1);
  const float* in = x.data<float>();
  const float* dy = dout.data<float>();
  float* d = dx.data<float>();
  for_each_span("fake_quant_int8 backward", x, n, [&](int64_t base) {
    const Int8Row q = int8_row_of(in + base, n);
    for (int64_t i = base; i < base + n; i++) d[i] = int8_fake_quant_grad(in[i], dy[i], q, identity);
  });
}

void CpuBackend::fake_quant_fp8_rows_forward(const Tensor& x, float lower_bound, Tensor& out) {
  const int64_t n = x.size(-1);
  const float* in = x.data<float>();
  float* o = out.data<float>();
  for_each_span("fake_quant_fp8_rows", x, n, [&](int64_t base) {
    const Fp8Row q = fp8_row(abs_max_of(in + base, n).first, lower_bound, identity);
    for (int64_t i = base; i < base + n; i++) o[i] = fp8_row_fake_quant(in[i], q);
  });
}

void CpuBackend::fake_quant_fp8_rows_backward(const Tensor& x, const Tensor& dout, float lower_bound, Tensor& dx) {
  const int64_t n = x.size(-1);
  const float* in = x.data<float>();
  const float* dy = dout.data<float>();
  float* d = dx.data<float>();
  for_each_span("fake_quant_fp8_rows backward", x, n, [&](int64_t base) {
    const auto [amax, ties] = abs_max_of(in + base, n);
    const Fp8Row q = fp8_row(amax, lower_bound, identity);
    float to_scale = 0.0f;
    for (int64_t i = base; i < base + n; i++) {
      const Fp8RowPartials p = fp8_row_partials(in[i], dy[i], q);
      d[i] = p.direct;
      to_scale += p.to_scale;
    }
    const float d_amax = fp8_row_amax_grad(q, to_scale, identity);
    for (int64_t i = base; i < base + n; i++) d[i] += amax_share(in[i], amax, d_amax, ties);
  });
}

void CpuBackend::fake_quant_int4_symmetric_forward(const Tensor& w, int64_t group, Tensor& out) {
  const float* in = w.data<float>();
  float* o = out.data<float>();
  for_each_span("fake_quant_int4_symmetric", w, group, [&](int64_t base) {
    const Int4SymmetricGroup g = int4_symmetric_group(abs_max_of(in + base, group).first, identity);
    for (int64_t i = base; i < base + group; i++) o[i] = int4_symmetric_fake_quant(in[i], g, identity);
  });
}

void CpuBackend::fake_quant_int4_symmetric_backward(const Tensor& w, const Tensor& dout, int64_t group, Tensor& dw) {
  const float* in = w.data<float>();
  const float* dy = dout.data<float>();
  float* dx = dw.data<float>();
  for_each_span("fake_quant_int4_symmetric backward", w, group, [&](int64_t base) {
    const auto [amax, ties] = abs_max_of(in + base, group);
    const Int4SymmetricGroup g = int4_symmetric_group(amax, identity);
    float to_inverse = 0.0f, to_scale = 0.0f;
    for (int64_t i = base; i < base + group; i++) {
      const Int4SymmetricPartials p = int4_symmetric_partials(in[i], dy[i], g, identity);
      dx[i] = p.direct;
      to_inverse += p.to_inverse;
      to_scale += p.to_scale;
    }
    const float d_amax = int4_symmetric_amax_grad(g, to_inverse, to_scale, identity);
    for (int64_t i = base; i < base + group; i++) dx[i] += amax_share(in[i], amax, d_amax, ties);
  });
}

void CpuBackend::fake_quant_mxfp4(const Tensor& x, Tensor& out) {
  const float* in = x.data<float>();
  float* o = out.data<float>();
  for_each_span("fake_quant_mxfp4", x, kMxBlock, [&](int64_t base) {
    bool nan = false;  // torch's amax propagates NaN
    for (int64_t i = base; i < base + kMxBlock; i++) nan = nan || std::isnan(in[i]);
    const int exponent = mxfp4_block_exponent(nan ? NAN : abs_max_of(in + base, kMxBlock).first);
    for (int64_t i = base; i < base + kMxBlock; i++) o[i] = mxfp4_fake_quant(in[i], exponent);
  });
}

void CpuBackend::fake_quant_ternary(const Tensor& w, bool straight_through, Tensor& out) {
  const int64_t n = w.size(-1);
  const float* in = w.data<float>();
  float* o = out.data<float>();
  for_each_span("fake_quant_ternary", w, n, [&](int64_t base) {
    // In double: the correctly rounded sum. torch's vectorised f32 sum (its order set by the CPU's
    // vector width) may differ from it by a rounding or two, which moves a level only for a
    // weight within that of the middle between two.
    double abs_sum = 0.0;
    for (int64_t i = base; i < base + n; i++) abs_sum += std::fabs(in[i]);
    const float scale = ternary_scale(static_cast<float>(abs_sum), n, identity);
    for (int64_t i = base; i < base + n; i++) {
      const float q = ternary_fake_quant(in[i], scale, identity);
      o[i] = straight_through ? straight_through_value(in[i], q, identity) : q;
    }
  });
}

void CpuBackend::fake_quant_int8_absmax(const Tensor& x, Tensor& out) {
  const int64_t n = x.size(-1);
  const float* in = x.data<float>();
  float* o = out.data<float>();
  for_each_span("fake_quant_int8_absmax", x, n, [&](int64_t base) {
    const float scale = int8_absmax_scale(abs_max_of(in + base, n).first, identity);
    for (int64_t i = base; i < base + n; i++)
      o[i] = straight_through_value(in[i], int8_absmax_fake_quant(in[i], scale, identity), identity);
  });
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
