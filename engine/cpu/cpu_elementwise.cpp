// defines: CPU axpby, mul, multiply_by_mask, scale, scale_by (elementwise)
#include "engine/check.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"

namespace llm {

void CpuBackend::axpby(float a, const Tensor& x, float b, const Tensor& y, Tensor& out) {
  require_f32("axpby", x);
  OpTimer timer("axpby");
  const float* px = x.data<float>();
  const float* py = y.data<float>();
  float* po = out.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; i++) po[i] = a * px[i] + b * py[i];
}

void CpuBackend::mul(const Tensor& x, const Tensor& y, Tensor& out) {
  require_f32("mul", x);
  OpTimer timer("mul");
  const float* px = x.data<float>();
  const float* py = y.data<float>();
  float* po = out.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; i++) po[i] = px[i] * py[i];
}

void CpuBackend::multiply_by_mask(Tensor& x, const Tensor& keep) {
  require_f32("multiply_by_mask", x);
  LLM_CHECK(keep.dtype() == DType::u8 && keep.numel() == x.numel(),
            "multiply_by_mask: keep " + keep.str() + " must be u8 of x's shape " + x.str());
  OpTimer timer("multiply_by_mask");
  float* px = x.data<float>();
  const uint8_t* pk = keep.data<uint8_t>();
  const int64_t n = x.numel();
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; i++) px[i] *= pk[i] ? 1.0f : 0.0f;
}

namespace {
// A factor of 1 writes nothing, as the CUDA scale kernel returns on it.
void scale_in_place(const char* op, Tensor& x, float s) {
  require_f32(op, x);
  if (s == 1.0f) return;
  OpTimer timer(op);
  float* p = x.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; i++) p[i] *= s;
}
}  // namespace

void CpuBackend::scale(Tensor& x, float s) { scale_in_place("scale", x, s); }

void CpuBackend::scale_by(Tensor& x, const Tensor& s, float expected) {
  require_scalar_factor("scale_by", s);
  scale_in_place("scale_by", x, s.data<float>()[0] / expected);  // the host is where the factor lives here
}

}  // namespace llm
