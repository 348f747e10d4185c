// defines: exp_sub, exp_sub_sum, max_of, dot_of, softmax_grad: the out-of-line SIMD loops of engine/cpu/cpu_simd_math.h
#include "engine/cpu/cpu_simd_math.h"

#include <limits>

namespace llm {

LLM_CPU_CLONES void exp_sub(const float* x, float c, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = fast_exp(x[i] - c);
}

LLM_CPU_CLONES float exp_sub_sum(const float* x, float c, float* y, int64_t n) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; i++) {
    y[i] = fast_exp(x[i] - c);
    sum += y[i];
  }
  return sum;
}

LLM_CPU_CLONES float max_of(const float* x, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : mx)
  for (int64_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;  // GCC 12 keeps std::max scalar
  return mx;
}

LLM_CPU_CLONES float dot_of(const float* a, const float* b, int64_t n) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; i++) sum += a[i] * b[i];
  return sum;
}

LLM_CPU_CLONES void softmax_grad(const float* p, float c, float* dp, int64_t n) {
  for (int64_t i = 0; i < n; i++) dp[i] = p[i] * (dp[i] - c);
}

}  // namespace llm
