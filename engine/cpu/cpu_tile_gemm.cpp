// defines: pack_panels, panel_gemm and panel_gemm_variants of engine/cpu/cpu_tile_gemm.h: one
// register-blocked kernel written with GCC vector types, built for AVX-512, AVX2 + FMA and the
// baseline ISA, the CPU's best chosen once at load
#include "engine/cpu/cpu_tile_gemm.h"

#include <algorithm>
#include <cstring>

namespace llm {

PackedPanels pack_panels(const float* src, int64_t rows, int64_t cols, int64_t rs, int64_t cs,
                         float* dst) {
  const int64_t stride = rows * kPanelWidth;
  for (int64_t c0 = 0; c0 < cols; c0 += kPanelWidth) {
    float* panel = dst + (c0 / kPanelWidth) * stride;
    const int64_t w = std::min(kPanelWidth, cols - c0);
    for (int64_t r = 0; r < rows; r++) {
      float* out = panel + r * kPanelWidth;
      for (int64_t c = 0; c < w; c++) out[c] = src[r * rs + (c0 + c) * cs];
      std::fill(out + w, out + kPanelWidth, 0.0f);
    }
  }
  return {dst, stride, kPanelWidth};
}

PackedPanels pack_rows(const float* src, int64_t rows, int64_t cols, int64_t rs, float* dst) {
  const int64_t width = panel_cols(cols);
  for (int64_t r = 0; r < rows; r++) {
    std::copy(src + r * rs, src + r * rs + cols, dst + r * width);
    std::fill(dst + r * width + cols, dst + (r + 1) * width, 0.0f);
  }
  return {dst, kPanelWidth, width};
}

namespace {

// Vector types of 4, 8 and 16 floats: the compiler maps their arithmetic onto the instructions
// of the function's target (an AVX-512 register, an AVX2 one, two SSE ones, ...).
typedef float F4 __attribute__((vector_size(16)));
typedef float F8 __attribute__((vector_size(32)));
typedef float F16 __attribute__((vector_size(64)));

// Unaligned vector loads and stores: memcpy compiles to one move instruction, legal at any
// float's address. By reference, not by value: a vector argument's ABI differs between ISAs.
template <class V>
__attribute__((always_inline)) inline void load(V& v, const float* p) {
  std::memcpy(&v, p, sizeof v);
}
template <class V>
__attribute__((always_inline)) inline void store(float* p, const V& v) {
  std::memcpy(p, &v, sizeof v);
}

// MR rows of C by one panel (kPanelWidth columns): MR * kPanelWidth / lanes accumulators stay in
// registers for the whole k loop, each step loads the panel's row of B once and broadcasts MR
// elements of A. Rows past m (the last block's) repeat row m - 1 and are not stored, columns
// past n are the panel's zeros and are not stored either. Inlined into each ISA's build.
template <class V, int MR>
__attribute__((always_inline)) inline void row_block(int64_t mv, int64_t nv, int64_t k, float alpha,
                                                     const float* a, int64_t a_rs, int64_t a_cs,
                                                     const float* b, int64_t b_rs, bool accumulate,
                                                     float* c, int64_t ldc) {
  constexpr int W = sizeof(V) / sizeof(float), NV = kPanelWidth / W;
  int64_t row[MR];
  for (int r = 0; r < MR; r++) row[r] = std::min<int64_t>(r, mv - 1) * a_rs;
  V acc[MR][NV] = {};
  for (int64_t l = 0; l < k; l++) {
    V bl[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) load(bl[v], b + l * b_rs + v * W);
    const float* al = a + l * a_cs;
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) {
      const float x = al[row[r]];
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) acc[r][v] += x * bl[v];
    }
  }
  // Rows and vectors by constant index (unrolled), so the accumulators never leave registers.
#pragma GCC unroll 16
  for (int r = 0; r < MR; r++) {
    if (r >= mv) break;
    float* cr = c + r * ldc;
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
      V y = alpha * acc[r][v];
      if (nv == kPanelWidth) {
        if (accumulate) {
          V old;
          load(old, cr + v * W);
          y += old;
        }
        store(cr + v * W, y);
      } else {
        for (int j = 0; j < W && v * W + j < nv; j++)
          cr[v * W + j] = accumulate ? cr[v * W + j] + y[j] : y[j];
      }
    }
  }
}

// Panels outer, row blocks inner: one panel of B (k * kPanelWidth floats) serves all of A's rows
// while it is hot in cache.
template <class V, int MR>
__attribute__((always_inline)) inline void gemm(int64_t m, int64_t n, int64_t k, float alpha,
                                                const float* a, int64_t a_rs, int64_t a_cs,
                                                PackedPanels b, bool accumulate, float* c,
                                                int64_t ldc) {
  for (int64_t j = 0; j < n; j += kPanelWidth) {
    const float* panel = b.data + (j / kPanelWidth) * b.panel_stride;
    const int64_t nv = std::min(kPanelWidth, n - j);
    for (int64_t i = 0; i < m; i += MR)
      row_block<V, MR>(std::min<int64_t>(MR, m - i), nv, k, alpha, a + i * a_rs, a_rs, a_cs,
                       panel, b.row_stride, accumulate, c + i * ldc + j, ldc);
  }
}

// Rows per block: as many as leave registers for B's row and a broadcast (32 zmm / 16 ymm / 16
// xmm registers); each divides kPanelRowMultiple.
void gemm_portable(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t a_rs,
                   int64_t a_cs, PackedPanels b, bool accumulate, float* c, int64_t ldc) {
  gemm<F4, 1>(m, n, k, alpha, a, a_rs, a_cs, b, accumulate, c, ldc);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LLM_PANEL_GEMM_X86 1
__attribute__((target("avx2,fma"))) void gemm_avx2(int64_t m, int64_t n, int64_t k, float alpha,
                                                   const float* a, int64_t a_rs, int64_t a_cs,
                                                   PackedPanels b, bool accumulate, float* c,
                                                   int64_t ldc) {
  gemm<F8, 3>(m, n, k, alpha, a, a_rs, a_cs, b, accumulate, c, ldc);
}

__attribute__((target("avx512f"))) void gemm_avx512(int64_t m, int64_t n, int64_t k, float alpha,
                                                    const float* a, int64_t a_rs, int64_t a_cs,
                                                    PackedPanels b, bool accumulate, float* c,
                                                    int64_t ldc) {
  gemm<F16, 12>(m, n, k, alpha, a, a_rs, a_cs, b, accumulate, c, ldc);
}
#endif

}  // namespace

std::vector<PanelGemmVariant> panel_gemm_variants() {
  std::vector<PanelGemmVariant> out;
#ifdef LLM_PANEL_GEMM_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) out.push_back({"avx512", gemm_avx512});
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    out.push_back({"avx2", gemm_avx2});
#endif
  out.push_back({"portable", gemm_portable});
  return out;
}

void panel_gemm(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t a_rs,
                int64_t a_cs, PackedPanels b, bool accumulate, float* c, int64_t ldc) {
  static const PanelGemmFn best = panel_gemm_variants().front().fn;
  best(m, n, k, alpha, a, a_rs, a_cs, b, accumulate, c, ldc);
}

}  // namespace llm
