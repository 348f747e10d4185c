// The tensor-core fragment index math of cuda/attention/mma_fragments.cuh, checked on the CPU
// without a GPU: a simulated 32-lane warp gathers its fragments with the header's loaders, a
// simulated mma.m16n8k16 multiplies them with the PTX ISA's documented semantics (transcribed
// here separately, as the ISA states them), and the C fragments scattered back must equal the
// exact product. Also the C -> A register re-use of the attention kernels (P V after Q K^T), the
// hi + lo bf16 split of the backward, and the ldmatrix loads of the v3 kernels
// (cuda/attention/flash_attention_v3.cu): the registers they deliver are the fragments.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cuda/attention/mma_fragments.cuh"

using namespace llm::mma;

namespace {

constexpr int kLanes = 32;

// The PTX ISA's m16n8k16 .bf16 layouts, word for word ("Matrix Fragments for mma.m16n8k16 with
// floating point type"): groupID = laneid >> 2, threadID_in_group = laneid % 4.
Coord isa_a(int lane, int i) {
  const int group = lane >> 2, tig = lane % 4;
  const int row = (0 <= i && i < 2) || (4 <= i && i < 6) ? group : group + 8;
  const int col = i < 4 ? tig * 2 + (i & 0x1) : tig * 2 + (i & 0x1) + 8;
  return {row, col};
}
Coord isa_b(int lane, int i) {  // (row = k, col = n)
  const int group = lane >> 2, tig = lane % 4;
  const int row = i < 2 ? tig * 2 + (i & 0x1) : tig * 2 + (i & 0x1) + 8;
  return {row, group};
}
Coord isa_c(int lane, int i) {
  const int group = lane >> 2, tig = lane % 4;
  return {i < 2 ? group : group + 8, tig * 2 + (i & 0x1)};
}

// Element e of a register file (element 2r + h is half h of register r: a0 low, a1 high).
float element(const uint32_t* regs, int e) {
  return bf16_value(static_cast<uint16_t>(regs[e / 2] >> (16 * (e % 2))));
}

struct LaneA {
  uint32_t r[4];
};
struct LaneB {
  uint32_t r[2];
};
struct LaneC {
  float c[4];
};

// One mma.sync over the warp: rebuild A (16 x 16) and B (16 x 8) from every lane's registers by
// the ISA's layout, multiply, and add into each lane's C registers by the ISA's layout.
void simulated_mma(LaneC c[kLanes], const LaneA a[kLanes], const LaneB b[kLanes]) {
  float A[16][16], B[16][8];
  for (int lane = 0; lane < kLanes; lane++) {
    for (int i = 0; i < 8; i++) A[isa_a(lane, i).row][isa_a(lane, i).col] = element(a[lane].r, i);
    for (int i = 0; i < 4; i++) B[isa_b(lane, i).row][isa_b(lane, i).col] = element(b[lane].r, i);
  }
  for (int lane = 0; lane < kLanes; lane++)
    for (int i = 0; i < 4; i++) {
      const Coord at = isa_c(lane, i);
      for (int k = 0; k < 16; k++) c[lane].c[i] += A[at.row][k] * B[k][at.col];
    }
}

// A row-major bf16 matrix (bits) with a padded row stride, as the kernels keep them in shared
// memory; its values are small integers, so products and sums are exact in f32.
struct Matrix {
  int rows, cols, ld;
  std::vector<uint16_t> bits;
  Matrix(int r, int c, std::mt19937& rng, int range) : rows(r), cols(c), ld(c + 8), bits(r * ld) {
    std::uniform_int_distribution<int> dist(-range, range);
    for (int i = 0; i < r; i++)
      for (int j = 0; j < c; j++) bits[i * ld + j] = bf16_bits(float(dist(rng)));
  }
  float at(int i, int j) const { return bf16_value(bits[i * ld + j]); }
  Matrix transposed() const {
    Matrix t = *this;
    t.rows = cols, t.cols = rows, t.ld = rows + 8;
    t.bits.assign(t.rows * t.ld, 0);
    for (int i = 0; i < rows; i++)
      for (int j = 0; j < cols; j++) t.bits[j * t.ld + i] = bits[i * ld + j];
    return t;
  }
};

// C (16 x 8 nt) = A (16 x 16 ks) B, with B given as its transpose bt, the way the kernels call it:
// per k-slice each lane loads its A fragment, per n-tile its B fragment, and the warp runs one mma.
std::vector<LaneC> warp_product(const Matrix& a, const Matrix& bt) {
  const int ks = a.cols / 16, nt = bt.rows / 8;
  std::vector<LaneC> c(kLanes * nt, LaneC{{0, 0, 0, 0}});
  for (int kk = 0; kk < ks; kk++)
    for (int t = 0; t < nt; t++) {
      LaneA fa[kLanes];
      LaneB fb[kLanes];
      LaneC fc[kLanes];
      for (int lane = 0; lane < kLanes; lane++) {
        load_a(a.bits.data() + 16 * kk, a.ld, lane, fa[lane].r);
        load_b(bt.bits.data() + 8 * t * bt.ld + 16 * kk, bt.ld, lane, fb[lane].r);
        fc[lane] = c[lane * nt + t];
      }
      simulated_mma(fc, fa, fb);
      for (int lane = 0; lane < kLanes; lane++) c[lane * nt + t] = fc[lane];
    }
  return c;
}

// ldmatrix .x4 over a warp as the PTX ISA states it ("Warp-level matrix load instruction:
// ldmatrix"): lane 8 i + r gives the address (an element offset into `smem`) of row r of matrix i;
// each lane then receives, in register i, the two elements of matrix i at row lane / 4,
// cols 2 (lane % 4) and + 1, or with .trans at rows 2 (lane % 4) and + 1, col lane / 4.
void simulated_ldmatrix_x4(const uint16_t* smem, const int offset[kLanes], bool trans,
                           uint32_t regs[kLanes][4]) {
  for (int lane = 0; lane < kLanes; lane++)
    for (int i = 0; i < 4; i++) {
      auto at = [&](int row, int col) { return uint32_t(smem[offset[8 * i + row] + col]); };
      const int g = lane / 4, t = lane % 4;
      regs[lane][i] = trans ? at(2 * t, g) | at(2 * t + 1, g) << 16
                            : at(g, 2 * t) | at(g, 2 * t + 1) << 16;
    }
}

// The C fragments scattered to a 16 x 8 nt matrix with the header's c_coord.
std::vector<float> scatter(const std::vector<LaneC>& c, int nt) {
  std::vector<float> m(16 * 8 * nt);
  for (int lane = 0; lane < kLanes; lane++)
    for (int t = 0; t < nt; t++)
      for (int i = 0; i < 4; i++) {
        const Coord at = c_coord(lane, i);
        m[at.row * 8 * nt + 8 * t + at.col] = c[lane * nt + t].c[i];
      }
  return m;
}

}  // namespace

TEST_CASE("the header's fragment coordinates are the ISA's, and each covers its tile once") {
  int a_seen[16][16] = {}, b_seen[16][8] = {}, c_seen[16][8] = {};
  for (int lane = 0; lane < kLanes; lane++) {
    for (int i = 0; i < 8; i++) {
      CHECK(a_coord(lane, i).row == isa_a(lane, i).row);
      CHECK(a_coord(lane, i).col == isa_a(lane, i).col);
      a_seen[a_coord(lane, i).row][a_coord(lane, i).col]++;
    }
    for (int i = 0; i < 4; i++) {
      CHECK(b_coord(lane, i).row == isa_b(lane, i).row);
      CHECK(b_coord(lane, i).col == isa_b(lane, i).col);
      CHECK(c_coord(lane, i).row == isa_c(lane, i).row);
      CHECK(c_coord(lane, i).col == isa_c(lane, i).col);
      b_seen[b_coord(lane, i).row][b_coord(lane, i).col]++;
      c_seen[c_coord(lane, i).row][c_coord(lane, i).col]++;
    }
    // A register's two halves are k-neighbours: one 32-bit load.
    for (int r = 0; r < 4; r++) {
      CHECK(a_coord(lane, 2 * r + 1).row == a_coord(lane, 2 * r).row);
      CHECK(a_coord(lane, 2 * r + 1).col == a_coord(lane, 2 * r).col + 1);
    }
    for (int r = 0; r < 2; r++) {
      CHECK(b_coord(lane, 2 * r + 1).row == b_coord(lane, 2 * r).row + 1);
      CHECK(b_coord(lane, 2 * r + 1).col == b_coord(lane, 2 * r).col);
    }
  }
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 16; c++) CHECK(a_seen[r][c] == 1);
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 8; c++) {
      CHECK(b_seen[r][c] == 1);
      CHECK(c_seen[r][c] == 1);
    }
}

TEST_CASE("a simulated warp: fragments loaded from padded tiles multiply to the exact product") {
  std::mt19937 rng(7);
  // The kernels' shapes: scores 16 x 64 over D = 64 or 128, outputs 16 x D over 64 keys.
  for (auto [k, n] :
       {std::pair{64, 64}, std::pair{128, 64}, std::pair{64, 128}, std::pair{32, 8}}) {
    CAPTURE(k);
    CAPTURE(n);
    const Matrix a(16, k, rng, 4), b(k, n, rng, 4);
    const std::vector<float> got = scatter(warp_product(a, b.transposed()), n / 8);
    for (int i = 0; i < 16; i++)
      for (int j = 0; j < n; j++) {
        float want = 0.0f;
        for (int x = 0; x < k; x++) want += a.at(i, x) * b.at(x, j);
        CHECK(got[i * n + j] == want);
      }
  }
}

TEST_CASE("C -> A re-use: a product's C registers feed the next mma as its A operand") {
  std::mt19937 rng(11);
  // P (16 x 32) = A1 (16 x 32) B1 (32 x 32); then O (16 x 16) = P B2 (32 x 16), with P taken
  // from the lanes' C registers by c_to_a, as the forward does for P V. Values stay below 256,
  // so P is exact in bf16.
  const Matrix a1(16, 32, rng, 2), b1(32, 32, rng, 1), b2(32, 16, rng, 3);
  const std::vector<LaneC> p = warp_product(a1, b1.transposed());  // 4 n-tiles per lane
  const Matrix b2t = b2.transposed();
  std::vector<LaneC> o(kLanes * 2, LaneC{{0, 0, 0, 0}});
  for (int kk = 0; kk < 2; kk++)
    for (int t = 0; t < 2; t++) {
      LaneA fa[kLanes];
      LaneB fb[kLanes];
      LaneC fc[kLanes];
      for (int lane = 0; lane < kLanes; lane++) {
        float c[4][4];
        for (int u = 0; u < 4; u++)
          for (int i = 0; i < 4; i++) c[u][i] = p[lane * 4 + u].c[i];
        c_to_a(c, kk, fa[lane].r);
        load_b(b2t.bits.data() + 8 * t * b2t.ld + 16 * kk, b2t.ld, lane, fb[lane].r);
        fc[lane] = o[lane * 2 + t];
      }
      simulated_mma(fc, fa, fb);
      for (int lane = 0; lane < kLanes; lane++) o[lane * 2 + t] = fc[lane];
    }
  const std::vector<float> got = scatter(o, 2), pm = scatter(p, 4);
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 16; j++) {
      float want = 0.0f;
      for (int x = 0; x < 32; x++) want += pm[i * 32 + x] * b2.at(x, j);
      CHECK(got[i * 16 + j] == want);
    }
  // And the mapping itself: A element i of slice kk is C element a_reg_c_elem of its n-tile.
  for (int lane = 0; lane < kLanes; lane++)
    for (int kk = 0; kk < 2; kk++)
      for (int i = 0; i < 8; i++) {
        const Coord in_a = a_coord(lane, i);
        const Coord in_c = c_coord(lane, a_reg_c_elem(i / 2) + i % 2);
        CHECK(in_a.row == in_c.row);
        CHECK(16 * kk + in_a.col == 8 * a_reg_c_tile(kk, i / 2) + in_c.col);
      }
}

TEST_CASE("bf16 rounding is to nearest even, and the hi + lo split keeps about 16 bits") {
  CHECK(bf16_bits(1.0f) == 0x3f80);
  CHECK(bf16_bits(1.0f + 1.0f / 256) == 0x3f80);  // a tie: rounds to the even 1.0
  CHECK(bf16_bits(1.0f + 3.0f / 256) == 0x3f82);  // a tie: rounds up to even
  CHECK(bf16_bits(-2.5f) == 0xc020);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  float c[2][4];
  for (int trial = 0; trial < 1000; trial++) {
    for (auto& tile : c)
      for (float& x : tile) x = dist(rng) * std::exp2(float(trial % 20 - 10));
    uint32_t hi[4], lo[4];
    c_to_a_split(c, 0, hi, lo);
    for (int r = 0; r < 4; r++)
      for (int h = 0; h < 2; h++) {
        const float x = c[a_reg_c_tile(0, r)][a_reg_c_elem(r) + h];
        const float sum = element(hi, 2 * r + h) + element(lo, 2 * r + h);
        CHECK(std::fabs(sum - x) <= std::ldexp(std::fabs(x), -16));
      }
  }
}

TEST_CASE("ldmatrix x4 (and .trans) deliver the A and B fragments of the mma they feed") {
  std::mt19937 rng(5);
  // A 32 x 32 region of a padded tile, read at the 16 x 16 block (16 r0, 16 c0), as the v3
  // kernels read Q (A), K (B^T: keys are n, head dims k) and V (B itself: keys are k, dims n).
  const Matrix m(32, 32, rng, 100), mt = m.transposed();
  for (int r0 = 0; r0 < 2; r0++)
    for (int c0 = 0; c0 < 2; c0++) {
      CAPTURE(r0);
      CAPTURE(c0);
      const int base = 16 * r0 * m.ld + 16 * c0;
      int a_rows[kLanes], bt_rows[kLanes];
      for (int lane = 0; lane < kLanes; lane++) {
        a_rows[lane] = base + ldsm_row_a(lane).row * m.ld + ldsm_row_a(lane).col;
        bt_rows[lane] = base + ldsm_row_bt(lane).row * m.ld + ldsm_row_bt(lane).col;
      }
      uint32_t a[kLanes][4], bt[kLanes][4], b[kLanes][4];
      simulated_ldmatrix_x4(m.bits.data(), a_rows, false, a);
      simulated_ldmatrix_x4(m.bits.data(), bt_rows, false, bt);
      simulated_ldmatrix_x4(m.bits.data(), a_rows, true, b);
      for (int lane = 0; lane < kLanes; lane++) {
        uint32_t want_a[4];
        load_a(m.bits.data() + base, m.ld, lane, want_a);
        for (int r = 0; r < 4; r++) CHECK(a[lane][r] == want_a[r]);
        for (int t = 0; t < 2; t++) {
          // As B^T, the region's rows 8 t .. 8 t + 7 are n-tile t.
          uint32_t want_bt[2], want_b[2];
          load_b(m.bits.data() + base + 8 * t * m.ld, m.ld, lane, want_bt);
          // As B (rows k, cols n), n-tile t is columns 8 t ..: the same as rows of the transpose.
          load_b(mt.bits.data() + (16 * c0 + 8 * t) * mt.ld + 16 * r0, mt.ld, lane, want_b);
          for (int r = 0; r < 2; r++) {
            CHECK(bt[lane][2 * t + r] == want_bt[r]);
            CHECK(b[lane][2 * t + r] == want_b[r]);
          }
        }
      }
    }
  // Every lane's row address is 16-byte aligned in a tile whose rows are (a multiple of 8 bf16),
  // and the eight addresses of one matrix fall in distinct bank groups at the kernels' padding:
  // rows of D + 8 bf16 (D = 64, 128) are 4 banks apart modulo 32.
  for (int ld : {64 + 8, 128 + 8})
    for (int i = 0; i < 4; i++) {
      int banks_seen = 0;
      for (int r = 0; r < 8; r++) {
        const Coord c = ldsm_row_a(8 * i + r);
        CHECK(c.col % 8 == 0);
        banks_seen |= 1 << ((c.row * ld + c.col) * 2 / 4 % 32 / 4);
      }
      CHECK(banks_seen == 0xff);
    }
}
