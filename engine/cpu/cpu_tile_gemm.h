// defines: PackedPanels, pack_panels, panel_gemm (the CPU tiled attentions' register-blocked
// tile products over operands packed once per head) and panel_gemm_variants (each ISA's build,
// for tests)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace llm {

// A BLAS call packs both operands before it multiplies, on every call; the tiled attentions
// multiply the same K, V (forward) and Q, dO (backward) rows against every tile of the other
// side, so they pack those once per head into this layout and call panel_gemm per tile.
// Panel layout: column c of a (rows x cols) matrix lives in panel c / kPanelWidth, which holds
// its rows one after another (row r, column c at data[(c / kPanelWidth) * panel_stride +
// r * row_stride + c % kPanelWidth]); columns past the matrix's are zero, so the kernel always
// reads whole panels. pack_panels writes rows kPanelWidth floats apart, so a panel is one
// contiguous block; a row-major matrix whose rows are padded with zeros to a multiple of
// kPanelWidth is the same layout with panel_stride kPanelWidth and row_stride its padded width.
constexpr int64_t kPanelWidth = 32;

struct PackedPanels {
  const float* data;
  int64_t panel_stride, row_stride;

  // The block starting at row r0 and column c0 (a multiple of kPanelWidth), same panels.
  PackedPanels at(int64_t r0, int64_t c0) const {
    return {data + (c0 / kPanelWidth) * panel_stride + r0 * row_stride, panel_stride, row_stride};
  }
};

// Every build's block of rows (12 AVX-512, 3 AVX2, 1 baseline) divides this: a caller that
// splits a product by rows in multiples of it leaves no partly filled block behind.
constexpr int64_t kPanelRowMultiple = 12;

inline int64_t panel_cols(int64_t cols) {
  return (cols + kPanelWidth - 1) / kPanelWidth * kPanelWidth;
}

// Packs the (rows x cols) matrix whose (r, c) element is src[r * rs + c * cs] (a transposed
// view when cs > rs) into dst, rows * panel_cols(cols) floats; returns the panels.
PackedPanels pack_panels(const float* src, int64_t rows, int64_t cols, int64_t rs, int64_t cs,
                         float* dst);
// Copies the (rows x cols) matrix with rows rs floats apart into dst as rows of panel_cols(cols)
// floats, zero-padded: contiguous rows for an A operand (a_rs = panel_cols(cols)) that are also
// the panels returned, for a B operand.
PackedPanels pack_rows(const float* src, int64_t rows, int64_t cols, int64_t rs, float* dst);

// C (m x n, row stride ldc) = alpha * A B, or C += alpha * A B when accumulate; A's (i, l)
// element is a[i * a_rs + l * a_cs] (so A may be a transposed view), B is (k x n) in panels.
// Each element sums its k products in order (one fused multiply-add each where the CPU has FMA),
// so results depend on the CPU's ISA, never on the threads or the tiling around the call.
void panel_gemm(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t a_rs,
                int64_t a_cs, PackedPanels b, bool accumulate, float* c, int64_t ldc);

// Each build of panel_gemm this CPU can run, best first (the one panel_gemm calls), by name.
using PanelGemmFn = void (*)(int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t,
                             PackedPanels, bool, float*, int64_t);
struct PanelGemmVariant {
  std::string name;
  PanelGemmFn fn;
};
std::vector<PanelGemmVariant> panel_gemm_variants();

}  // namespace llm
