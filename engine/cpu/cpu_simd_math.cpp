// defines: exp_sub, the one out-of-line SIMD loop of engine/cpu/cpu_simd_math.h
#include "engine/cpu/cpu_simd_math.h"

namespace llm {

LLM_CPU_CLONES void exp_sub(const float* x, float c, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = fast_exp(x[i] - c);
}

}  // namespace llm
