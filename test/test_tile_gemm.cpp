// The CPU tiled attentions' tile products (engine/cpu/cpu_tile_gemm.h): every ISA build this CPU
// runs against a double-precision loop, at sizes with row, column and panel tails, A plain and
// transposed, B in packed panels or padded rows, C overwritten or accumulated into a strided
// block; the two layouts themselves; and the ISA builds agreeing with each other where they
// share FMA. (The attentions' masks, GQA and
// edge tiles through these products are test_attention's.)
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/cpu/cpu_tile_gemm.h"
#include "test/test_util.h"

using namespace llm;

namespace {

std::vector<float> random_floats(int64_t n) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(testing::rng());
  return v;
}

}  // namespace

TEST_CASE("pack_panels: columns in panels of kPanelWidth, zeros past the last column") {
  const int64_t rows = 3, cols = kPanelWidth + 5;
  std::vector<float> src = random_floats(rows * cols);
  std::vector<float> dst(rows * panel_cols(cols), -1.0f);
  // src read transposed: element (r, c) at src[c * rows + r].
  const PackedPanels p = pack_panels(src.data(), rows, cols, 1, rows, dst.data());
  CHECK(p.panel_stride == rows * kPanelWidth);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < panel_cols(cols); c++) {
      const float want = c < cols ? src[c * rows + r] : 0.0f;
      CHECK(p.data[(c / kPanelWidth) * p.panel_stride + r * kPanelWidth + c % kPanelWidth] == want);
    }
  CHECK(p.at(2, kPanelWidth).data == dst.data() + p.panel_stride + 2 * kPanelWidth);
}

TEST_CASE("pack_rows: rows padded with zeros to whole panels, the same panels as pack_panels'") {
  const int64_t rows = 3, cols = kPanelWidth + 5, rs = cols + 2;
  std::vector<float> src = random_floats(rows * rs);
  std::vector<float> dst(rows * panel_cols(cols), -1.0f);
  const PackedPanels p = pack_rows(src.data(), rows, cols, rs, dst.data());
  CHECK(p.row_stride == panel_cols(cols));
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < panel_cols(cols); c++) {
      const float want = c < cols ? src[r * rs + c] : 0.0f;
      CHECK(dst[r * p.row_stride + c] == want);  // as an A operand
      const int64_t at = (c / kPanelWidth) * p.panel_stride + r * p.row_stride + c % kPanelWidth;
      CHECK(p.data[at] == want);  // as a B operand
    }
}

TEST_CASE("panel_gemm: every ISA build against a double loop; tails, transposed A, accumulate") {
  const std::vector<PanelGemmVariant> variants = panel_gemm_variants();
  REQUIRE(!variants.empty());
  CHECK(variants.back().name == "portable");
  MESSAGE("panel_gemm builds on this CPU: " << variants.size() << ", best " << variants[0].name);
  const int64_t sizes[] = {1, 2, 11, 13, 31, 32, 33, 64, 75};
  for (const PanelGemmVariant& variant : variants)
    for (int64_t m : sizes)
      for (int64_t n : sizes)
        for (int64_t k : {int64_t(0), int64_t(1), int64_t(7), int64_t(64), int64_t(129)})
          for (bool transposed : {false, true})
            for (bool accumulate : {false, true})
              for (bool rows_layout : {false, true}) {
                CAPTURE(variant.name);
                CAPTURE(m);
                CAPTURE(n);
                CAPTURE(k);
                CAPTURE(transposed);
                CAPTURE(accumulate);
                CAPTURE(rows_layout);
                const std::vector<float> a = random_floats(m * k), b = random_floats(k * n);
                std::vector<float> packed(k * panel_cols(n));
                float* bd = packed.data();
                const PackedPanels bp = rows_layout ? pack_rows(b.data(), k, n, n, bd)
                                                    : pack_panels(b.data(), k, n, n, 1, bd);
                // A stored (m x k) or (k x m); C a block of a wider matrix: columns past n stay.
                const int64_t a_rs = transposed ? 1 : k, a_cs = transposed ? m : 1, ldc = n + 3;
                const std::vector<float> c0 = random_floats(m * ldc);
                std::vector<float> c = c0;
                const float alpha = 0.75f;
                variant.fn(m, n, k, alpha, a.data(), a_rs, a_cs, bp, accumulate, c.data(), ldc);
                double worst = 0;
                for (int64_t i = 0; i < m; i++) {
                  for (int64_t j = 0; j < n; j++) {
                    double sum = 0, mag = 0;
                    for (int64_t l = 0; l < k; l++) {
                      const double x = double(a[i * a_rs + l * a_cs]) * b[l * n + j];
                      sum += x;
                      mag += std::fabs(x);
                    }
                    const double want = alpha * sum + (accumulate ? c0[i * ldc + j] : 0.0);
                    const double tol = 1e-6 * (alpha * mag + std::fabs(c0[i * ldc + j]) + 1.0);
                    worst = std::max(worst, std::fabs(c[i * ldc + j] - want) / tol);
                  }
                  for (int64_t j = n; j < ldc; j++) CHECK(c[i * ldc + j] == c0[i * ldc + j]);
                }
                CHECK(worst <= 1.0);
              }
}

TEST_CASE("panel_gemm: the FMA builds give the same bits (the same products, in the same order)") {
  std::vector<PanelGemmVariant> fma = panel_gemm_variants();
  fma.pop_back();  // the baseline ISA has no FMA: its roundings differ
  if (fma.size() < 2) {
    MESSAGE("fewer than two FMA builds on this CPU: nothing to compare");
    return;
  }
  const int64_t m = 45, n = 70, k = 130;
  const std::vector<float> a = random_floats(m * k), b = random_floats(k * n);
  std::vector<float> packed(k * panel_cols(n));
  const PackedPanels bp = pack_panels(b.data(), k, n, n, 1, packed.data());
  std::vector<float> first(m * n), other(m * n);
  fma[0].fn(m, n, k, 0.5f, a.data(), k, 1, bp, false, first.data(), n);
  for (size_t i = 1; i < fma.size(); i++) {
    fma[i].fn(m, n, k, 0.5f, a.data(), k, 1, bp, false, other.data(), n);
    CHECK(other == first);
  }
}
