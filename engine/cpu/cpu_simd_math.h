// defines: fast_exp, fast_sigmoid (branch-free f32 exp that compilers vectorise), exp_sub,
// exp_sub_sum, max_of, dot_of and softmax_grad (softmax and norm rows' SIMD loops) and LLM_CPU_CLONES (build a hot loop for AVX2 + FMA as well as for the
// baseline ISA)
#pragma once
#include <cstdint>
#include <cstring>

namespace llm {

// std::exp is a library call, so every loop that calls it stays scalar. This one is plain
// arithmetic and selects, so a loop over it becomes SIMD code:
//   exp(x) = 2^k * exp(r),  k = round(x / ln 2),  r = x - k ln 2 in [-ln2/2, ln2/2],
// ln 2 split in two (Cody-Waite) so k ln 2 is exact, exp(r) by Cephes' degree-7 polynomial, and
// 2^k built in the exponent bits as 2^(k/2) * 2^(k - k/2) so that results down into the
// subnormals come out right. Max relative error 8.5e-8 against exp in double where the result
// is a normal float, with or without FMA (test_ops sweeps it and asserts < 2^-23). Clamping x to
// [-104, 88.73] makes the arithmetic itself give 0 below the smallest subnormal (so -inf -> 0,
// which masks rely on) and inf above FLT_MAX; NaN in gives NaN out. The clamp's compares become
// SIMD selects only where FP exceptions are not trapped (-fno-trapping-math, set for llm_engine;
// results are the same).
inline float fast_exp(float x) {
  const float xc = x > -104.0f ? (x < 88.73f ? x : 88.73f) : -104.0f;  // NaN -> -104, fixed below
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float kf = (xc * 1.44269504088896341f + magic) - magic;
  const float r = (xc - kf * 0.693359375f) + kf * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t k = static_cast<int32_t>(kf), k1 = k / 2, k2 = k - k1;  // each in [-75, 64]
  const uint32_t b1 = static_cast<uint32_t>(k1 + 127) << 23;
  const uint32_t b2 = static_cast<uint32_t>(k2 + 127) << 23;
  float s1, s2;
  std::memcpy(&s1, &b1, sizeof s1);
  std::memcpy(&s2, &b2, sizeof s2);
  const float y = p * s1 * s2;
  return x == x ? y : x;
}

// 1 / (1 + exp(-x)): 0 at -inf, 1 at +inf.
inline float fast_sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }

// On x86-64 with GCC, a function marked so is compiled three times, for AVX-512 (x86-64-v4),
// AVX2 + FMA (x86-64-v3) and the baseline ISA, and the loader picks the one the CPU runs: one
// binary for CI's and users' machines, SIMD-wide where the CPU allows (the AVX-512 clone halves
// the exponentials' time where AVX-512 exists, as on this project's CI machines). An OpenMP loop inside is cloned
// with it; a virtual member cannot be marked, so hot loops live in free functions. FMA rounds
// differently, so the last bits of such a loop depend on the CPU (never on the run or the thread
// count).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)  // GCC: the one tried
#define LLM_CPU_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LLM_CPU_CLONES
#endif

// y[i] = exp(x[i] - c) for i < n (x == y allowed): a softmax row's or tile row's exponentials.
void exp_sub(const float* x, float c, float* y, int64_t n);
// The same, returning the sum of the y[i]. The sum runs in SIMD lanes (an OpenMP simd
// reduction), so its rounding depends on the ISA the loader picked, never on the run.
float exp_sub_sum(const float* x, float c, float* y, int64_t n);
// The largest x[i], i < n (-inf when n is 0).
float max_of(const float* x, int64_t n);
// The sum of a[i] * b[i], i < n, in SIMD lanes as exp_sub_sum's (a == b gives a sum of squares).
float dot_of(const float* a, const float* b, int64_t n);
// dp[i] = p[i] * (dp[i] - c), i < n: a softmax row's backward, dS = P * (dP - rowsum(dP * P)).
void softmax_grad(const float* p, float c, float* dp, int64_t n);

}  // namespace llm
