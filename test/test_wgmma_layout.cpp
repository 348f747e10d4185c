// The layouts and tile arithmetic the v4 attention kernels (cuda/attention/flash_attention_v4*.cu)
// rely on, checked on the CPU without a GPU (as test_mma_layout checks v2's and v3's):
//   - wgmma's register fragments (accumulator D and register A of m64nNk16), as the PTX ISA draws
//     them, against wgmma_layout.h's index functions and the mask code's (row, key) of each score;
//   - shared memory: a simulated TMA (128-byte swizzle, as the CUDA driver documents it) writes Q,
//     K and V tiles (128 rows, and the backward's streamed 64- and 128-row ones), and a simulated
//     wgmma reads its operands through the kernels' descriptors by the ISA's canonical layouts;
//     every element read must be the one meant;
//   - a simulated warpgroup runs S = Q K^T (both operands from shared memory) and O = P V (P from
//     S's accumulator registers as register A, V MN-major), equal to the exact products, and v5's
//     dQ = dS K (dS^T stored from accumulators into a swizzled tile and read back as an MN-major
//     A, K's boxes as MN-major B);
//   - the key bands, skipped and mask-free tiles of the forward, dQ and dK/dV kernels under every
//     mask (causal, documents, S2, none);
//   - v6's split of the dK/dV kernel's GQA groups over blocks: every query head once.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "cuda/attention/flash_v4_tiles.h"
#include "cuda/attention/wgmma_layout.h"

using namespace llm;
using namespace llm::wgmma;

namespace {

constexpr int kWarpgroup = 128;

// PTX ISA, "Matrix Fragments for wgmma.mma_async.m64nNk16" (figures for A and D), transcribed:
// thread t is lane t % 32 of warp t / 32; groupID = lane >> 2, threadID_in_group = lane % 4.
Coord isa_d(int t, int i) {
  const int lane = t % 32, row = 16 * (t / 32) + (lane >> 2) + 8 * ((i >> 1) & 1);
  return {row, 8 * (i >> 2) + 2 * (lane % 4) + (i & 1)};
}
Coord isa_a(int t, int i) {
  const int lane = t % 32, row = 16 * (t / 32) + (lane >> 2) + 8 * ((i >> 1) & 1);
  return {row, 2 * (lane % 4) + (i & 1) + 8 * (i >> 2)};
}

// PTX ISA, "Matrix Descriptor Format" and "Canonical Layouts" (128-byte swizzling, bf16: T = 8
// elements of 16 bits make 16 bytes): the byte address wgmma reads element (mn, k) of a 16-deep
// k-slice from, given the descriptor.
struct Desc {
  uint32_t start, lbo, sbo;
  int swizzle;
};
Desc decode(uint64_t d) {
  return {uint32_t(d & 0x3FFF) << 4, uint32_t((d >> 16) & 0x3FFF) << 4,
          uint32_t((d >> 32) & 0x3FFF) << 4, int(d >> 62)};
}
uint32_t swizzle_3_4_3(uint32_t a) { return a ^ (((a >> 7) & 0x7) << 4); }  // Swizzle<3,4,3>
// K-major: ((8,m),(T,2k)):((8T,SBO),(1,T)) elements; MN-major:
// ((T,8,m),(8,k)):((1,T,LBO),(8T,SBO)).
uint32_t isa_kmajor(const Desc& d, int mn, int k) {
  return swizzle_3_4_3(d.start + 2 * ((mn % 8) * 64 + k) + (mn / 8) * d.sbo);
}
uint32_t isa_mnmajor(const Desc& d, int k, int mn) {
  return swizzle_3_4_3(d.start + 2 * (mn % 64 + (k % 8) * 64) + (mn / 64) * d.lbo +
                       (k / 8) * d.sbo);
}

// A simulated TMA with CU_TENSOR_MAP_SWIZZLE_128B: a box of 64 bf16 columns x rows lands row by
// row (128 bytes each), the 16-byte chunk c of row r moved to chunk c ^ (r % 8); the kernel puts
// box b (columns 64 b ..) b * rows * 128 bytes after the tile's start.
void tma_tile(std::vector<uint16_t>& smem, uint32_t tile, const std::vector<uint16_t>& src,
              int rows, int D) {
  for (int b = 0; b < D / 64; b++)
    for (int r = 0; r < rows; r++)
      for (int c = 0; c < 64; c++) {
        const uint32_t chunk = (c / 8) ^ (r % 8);
        const uint32_t byte = tile + b * rows * 128 + r * 128 + chunk * 16 + (c % 8) * 2;
        smem[byte / 2] = src[r * D + 64 * b + c];
      }
}

std::vector<uint16_t> random_bf16(int n, std::mt19937& rng) {
  std::normal_distribution<float> dist;
  std::vector<uint16_t> x(n);
  for (uint16_t& e : x) e = mma::bf16_bits(dist(rng));
  return x;
}

// Q (128 x D) at 0, K (128 x D) and V (128 x D) after it, each 1024-aligned as the kernel's.
struct Tiles {
  int D;
  uint32_t q = 0, k, v;
  std::vector<uint16_t> qs, ks, vs, smem;
};
Tiles make_tiles(int D, std::mt19937& rng) {
  Tiles t{D};
  t.k = 128 * D * 2;
  t.v = 2 * t.k;
  t.qs = random_bf16(128 * D, rng);
  t.ks = random_bf16(128 * D, rng);
  t.vs = random_bf16(128 * D, rng);
  t.smem.assign(3 * 128 * D, 0);
  tma_tile(t.smem, t.q, t.qs, 128, D);
  tma_tile(t.smem, t.k, t.ks, 128, D);
  tma_tile(t.smem, t.v, t.vs, 128, D);
  return t;
}

float at(const std::vector<uint16_t>& smem, uint32_t byte) {
  REQUIRE(byte % 2 == 0);
  REQUIRE(byte / 2 < smem.size());
  return mma::bf16_value(smem[byte / 2]);
}

}  // namespace

TEST_CASE("wgmma fragments: the header's coordinates are the ISA's and cover the tile once") {
  for (int N : {64, 128}) {
    std::vector<int> seen(64 * N, 0), seen_a(64 * 16, 0);
    for (int t = 0; t < kWarpgroup; t++) {
      for (int i = 0; i < N / 2; i++) {
        const Coord c = acc_coord(t, i), want = isa_d(t, i);
        CHECK(c.row == want.row);
        CHECK(c.col == want.col);
        seen[c.row * N + c.col]++;
        // The mask code's view (online_softmax.cuh): element i % 4 of n-tile i / 4 of the warp's
        // m16n8 C fragments, rows 16 w + c_row(0 or 2), key 8 (i / 4) + c_coord col.
        const Coord m = mma::c_coord(t % 32, i % 4);
        CHECK(want.row == 16 * (t / 32) + mma::c_coord(t % 32, 2 * ((i % 4) / 2)).row);
        CHECK(want.row == 16 * (t / 32) + m.row);
        CHECK(want.col == 8 * (i / 4) + m.col);
      }
      for (int i = 0; i < 8; i++) {
        const Coord c = a_coord(t, i), want = isa_a(t, i);
        CHECK(c.row == want.row);
        CHECK(c.col == want.col);
        seen_a[c.row * 16 + c.col]++;
      }
    }
    for (int s : seen) CHECK(s == 1);
    for (int s : seen_a) CHECK(s == 1);
  }
}

TEST_CASE("descriptors: every element wgmma reads is the one TMA wrote there") {
  std::mt19937 rng(3);
  for (int D : {64, 128}) {
    CAPTURE(D);
    const Tiles t = make_tiles(D, rng);
    CHECK(sw128(5 * 128 + 3 * 16) == swizzle_3_4_3(5 * 128 + 3 * 16));
    for (int kk = 0; kk < D / 16; kk++)
      for (int wg_row : {0, 64}) {  // Q as A: each consumer warpgroup's 64 rows
        const Desc a = decode(make_desc(t.q + kmajor_start(128, wg_row, kk), 16, kAtomBytes));
        CHECK(a.swizzle == 1);
        for (int r = 0; r < 64; r++)
          for (int k = 0; k < 16; k++) {
            CHECK(at(t.smem, isa_kmajor(a, r, k)) ==
                  mma::bf16_value(t.qs[(wg_row + r) * D + 16 * kk + k]));
            CHECK(t.q + tile_offset(128, wg_row + r, 16 * kk + k) == isa_kmajor(a, r, k));
          }
      }
    for (int kk = 0; kk < D / 16; kk++) {  // K as B (K-major), all 128 keys
      const Desc b = decode(make_desc(t.k + kmajor_start(128, 0, kk), 16, kAtomBytes));
      for (int n = 0; n < 128; n++)
        for (int k = 0; k < 16; k++)
          CHECK(at(t.smem, isa_kmajor(b, n, k)) == mma::bf16_value(t.ks[n * D + 16 * kk + k]));
    }
    for (int kk = 0; kk < 128 / 16; kk++) {  // V as B (MN-major): k = key row, n = head dim
      const Desc b = decode(make_desc(t.v + mnmajor_start(kk), mnmajor_lbo(128), kAtomBytes));
      for (int k = 0; k < 16; k++)
        for (int n = 0; n < D; n++)
          CHECK(at(t.smem, isa_mnmajor(b, k, n)) == mma::bf16_value(t.vs[(16 * kk + k) * D + n]));
    }
  }
}

// The streamed tiles: 64 rows (v4, v5; v6 at head_dim 128), 128 (v6 at head_dim 64).
TEST_CASE("descriptors of the backward's streamed tiles (Q, dO; K, V): K-major and MN-major") {
  std::mt19937 rng(5);
  for (int D : {64, 128})
    for (int rows : {64, 128}) {
      CAPTURE(D);
      CAPTURE(rows);
      const std::vector<uint16_t> src = random_bf16(rows * D, rng);
      std::vector<uint16_t> smem(rows * D, 0);
      tma_tile(smem, 0, src, rows, D);
      for (int kk = 0; kk < D / 16; kk++) {  // as B of a rows-wide score tile, k = head dim
        const Desc b = decode(make_desc(kmajor_start(rows, 0, kk), 16, kAtomBytes));
        for (int n = 0; n < rows; n++)
          for (int k = 0; k < 16; k++)
            CHECK(at(smem, isa_kmajor(b, n, k)) == mma::bf16_value(src[n * D + 16 * kk + k]));
      }
      for (int kk = 0; kk < rows / 16; kk++) {  // as B of a gradient product, k = row, n = head dim
        const Desc b = decode(make_desc(mnmajor_start(kk), mnmajor_lbo(rows), kAtomBytes));
        for (int k = 0; k < 16; k++)
          for (int n = 0; n < D; n++)
            CHECK(at(smem, isa_mnmajor(b, k, n)) == mma::bf16_value(src[(16 * kk + k) * D + n]));
      }
    }
}

namespace {

// One simulated wgmma.m64nNk16 over a warpgroup: A (64 x 16) from every thread's registers by the
// ISA's A layout, or from shared memory K-major; B (16 x N) from shared memory, K-major or
// MN-major; the product added into every thread's accumulator by the ISA's D layout.
using Acc = std::vector<std::vector<float>>;  // [thread][N / 2]
void simulated_wgmma(Acc& d, int N, const float (*a)[16], const std::vector<uint16_t>& smem,
                     const Desc& b, bool b_mn_major) {
  for (int t = 0; t < kWarpgroup; t++)
    for (int i = 0; i < N / 2; i++) {
      const Coord c = isa_d(t, i);
      double sum = d[t][i];
      for (int k = 0; k < 16; k++)
        sum += double(a[c.row][k]) *
               at(smem, b_mn_major ? isa_mnmajor(b, k, c.col) : isa_kmajor(b, c.col, k));
      d[t][i] = float(sum);
    }
}

}  // namespace

TEST_CASE("a simulated warpgroup: S = Q K^T from descriptors, then O = P V with P as register A") {
  std::mt19937 rng(7);
  for (int D : {64, 128}) {
    CAPTURE(D);
    const Tiles t = make_tiles(D, rng);
    const int wg_row = 64;  // the second consumer warpgroup
    Acc s(kWarpgroup, std::vector<float>(64));
    for (int kk = 0; kk < D / 16; kk++) {
      const Desc qd = decode(make_desc(t.q + kmajor_start(128, wg_row, kk), 16, kAtomBytes));
      float a[64][16];
      for (int r = 0; r < 64; r++)
        for (int k = 0; k < 16; k++) a[r][k] = at(t.smem, isa_kmajor(qd, r, k));
      simulated_wgmma(s, 128, a, t.smem,
                      decode(make_desc(t.k + kmajor_start(128, 0, kk), 16, kAtomBytes)), false);
    }
    std::vector<float> exact_s(64 * 128);
    for (int r = 0; r < 64; r++)
      for (int n = 0; n < 128; n++) {
        double e = 0;
        for (int c = 0; c < D; c++)
          e += double(mma::bf16_value(t.qs[(wg_row + r) * D + c])) *
               mma::bf16_value(t.ks[n * D + c]);
        exact_s[r * 128 + n] = float(e);
      }
    for (int th = 0; th < kWarpgroup; th++)
      for (int i = 0; i < 64; i++) {
        const Coord c = acc_coord(th, i);
        CHECK(s[th][i] == doctest::Approx(exact_s[c.row * 128 + c.col]).epsilon(1e-5));
      }
    // P: the scores scaled into (0, 1] stand in for the softmax; each thread turns its own
    // accumulator into register-A fragments (mma::c_to_a, as the kernel's to_a), and a simulated
    // wgmma rebuilds A from every thread's registers by the ISA's layout.
    for (auto& th : s)
      for (float& x : th) x = std::exp(x / 64.0f);
    Acc o(kWarpgroup, std::vector<float>(D / 2, 0.0f));
    for (int kk = 0; kk < 8; kk++) {
      float a[64][16];
      for (int th = 0; th < kWarpgroup; th++) {
        uint32_t regs[4];
        mma::c_to_a(reinterpret_cast<const float(*)[4]>(s[th].data()), kk, regs);
        for (int i = 0; i < 8; i++) {
          const Coord c = isa_a(th, i);
          a[c.row][c.col] = mma::bf16_value(uint16_t(regs[i / 2] >> (16 * (i % 2))));
        }
      }
      simulated_wgmma(o, D, a, t.smem,
                      decode(make_desc(t.v + mnmajor_start(kk), mnmajor_lbo(128), kAtomBytes)),
                      true);
    }
    for (int th = 0; th < kWarpgroup; th++)
      for (int i = 0; i < D / 2; i++) {
        const Coord c = acc_coord(th, i);
        double e = 0;
        for (int j = 0; j < 128; j++) {
          const float p =
              mma::bf16_value(mma::bf16_bits(std::exp(exact_s[c.row * 128 + j] / 64.0f)));
          e += double(p) * mma::bf16_value(t.vs[j * D + c.col]);
        }
        CHECK(o[th][i] == doctest::Approx(e).epsilon(1e-3));
      }
  }
}

TEST_CASE("v5's dQ = dS K: dS^T stored from accumulators, read back as MN-major A; K's box as B") {
  std::mt19937 rng(11);
  std::normal_distribution<float> dist;
  for (int D : {64, 128}) {
    CAPTURE(D);
    Tiles t = make_tiles(D, rng);
    // dS^T: 128 keys x 64 queries; consumer w holds keys 64 w .. as a 64 x 64 accumulator and
    // stores each element, rounded to bf16, where tile_offset puts (key, query) in a 128-row tile
    // (the kernel's store_ds_t), after the Q, K, V tiles.
    const uint32_t ds = uint32_t(t.smem.size()) * 2;
    t.smem.resize(t.smem.size() + 128 * 64, 0);
    std::vector<float> ds_t(128 * 64);  // [key][query], bf16 values
    for (int w = 0; w < 2; w++)
      for (int th = 0; th < kWarpgroup; th++)
        for (int i = 0; i < 32; i++) {
          const Coord c = acc_coord(th, i);
          const uint16_t bits = mma::bf16_bits(dist(rng));
          ds_t[(64 * w + c.row) * 64 + c.col] = mma::bf16_value(bits);
          t.smem[(ds + tile_offset(128, 64 * w + c.row, c.col)) / 2] = bits;
        }
    for (int box = 0; box < D / 64; box++) {  // consumer `box` sums head-dim columns 64 box ..
      Acc dq(kWarpgroup, std::vector<float>(32, 0.0f));
      for (int kk = 0; kk < 8; kk++) {  // 16 keys a step: A = dS (query x key), MN-major
        const Desc a_desc = decode(make_desc(ds + mnmajor_start(kk), mnmajor_lbo(128), kAtomBytes));
        float a[64][16];
        for (int m = 0; m < 64; m++)
          for (int k = 0; k < 16; k++) {
            a[m][k] = at(t.smem, isa_mnmajor(a_desc, k, m));
            CHECK(a[m][k] == ds_t[(16 * kk + k) * 64 + m]);
          }
        const uint32_t k_box = t.k + uint32_t(box) * 128 * kRowBytes;
        simulated_wgmma(dq, 64, a, t.smem,
                        decode(make_desc(k_box + mnmajor_start(kk), mnmajor_lbo(128), kAtomBytes)),
                        true);
      }
      for (int th = 0; th < kWarpgroup; th++)
        for (int i = 0; i < 32; i++) {
          const Coord c = acc_coord(th, i);  // query c.row, head-dim column 64 box + c.col
          double e = 0;
          for (int j = 0; j < 128; j++)
            e += double(ds_t[j * 64 + c.row]) *
                 mma::bf16_value(t.ks[j * D + 64 * box + c.col]);
          CHECK(dq[th][i] == doctest::Approx(e).epsilon(1e-4));
        }
    }
  }
}

namespace {

// Whether query rows [i0 + r_lo, i0 + r_hi) see any (every) key of [j0, j0 + n) of head h.
bool sees(const MaskView& mask, int64_t h, int64_t i0, int64_t r_lo, int64_t r_hi, int64_t j0,
          int64_t n, bool every) {
  for (int64_t r = r_lo; r < r_hi; r++)
    for (int64_t j = j0; j < j0 + n; j++)
      if (mask.keys(0, h, i0 + r).contains(j) != every) return !every;
  return every;
}

// The query-tile kernels (forward: N = kKeys; dQ: N = 64): the band holds every key a row of the
// tile sees, and a tile a warpgroup leaves unmasked is seen whole by each of its rows in the
// sequence (the others are never stored).
template <int N>
void check_query_tile(const MaskView& mask, int64_t h, int64_t i0) {
  const int64_t m = std::min<int64_t>(v4::kRows, mask.S - i0);
  const v4::Band band = v4::key_band<N>(mask.keys(0, h, i0), mask.keys(0, h, i0 + m - 1));
  CHECK(band.j_first % N == 0);
  const int64_t j_end = band.j_first + int64_t(band.n) * N;
  for (int64_t r = 0; r < m; r++) {
    const KeySpan sp = mask.keys(0, h, i0 + r);
    if (sp.hi > sp.lo) CHECK((sp.lo >= band.j_first && sp.hi <= j_end));
  }
  for (int wg_row : {0, 64}) {
    const KeySpan first = mask.keys(0, h, i0 + wg_row),
                  last = mask.keys(0, h, i0 + v4::warpgroup_last_row(wg_row, m));
    for (int t = 0; t < band.n; t++) {
      const int64_t j0 = band.j_first + int64_t(t) * N;
      if (!v4::needs_mask<N>(first, last, j0))
        CHECK(sees(mask, h, i0, wg_row, std::min<int64_t>(wg_row + 64, m), j0, N, true));
      if (!MaskView::spans_meet(first, last, j0, N))  // the dQ kernel skips it
        CHECK_FALSE(sees(mask, h, i0, wg_row, std::min<int64_t>(wg_row + 64, m), j0, N, false));
    }
  }
}

// The dK/dV kernel: for the keys [wg_key, wg_key + 64) of a warpgroup and a query tile of T rows
// (64, or v6's 128 at head_dim 64), a skipped pair has no visible score, an unmasked one only
// visible scores (keys in the sequence).
void check_key_tile(const MaskView& mask, int64_t h, int64_t wg_key, int64_t i0, int64_t T) {
  const int64_t m = std::min<int64_t>(T, mask.S - i0), n = std::min<int64_t>(64, mask.S - wg_key);
  const KeySpan first = mask.keys(0, h, i0), last = mask.keys(0, h, i0 + m - 1);
  if (!MaskView::spans_meet(first, last, wg_key, 64))
    CHECK_FALSE(sees(mask, h, i0, 0, m, wg_key, n, false));
  else if (!v4::needs_mask<64>(first, last, wg_key))
    CHECK(sees(mask, h, i0, 0, m, wg_key, 64, true));
}

}  // namespace

TEST_CASE("v4 tiles: key bands, skipped and mask-free tiles of every mask") {
  const int64_t H = 4;
  for (int64_t S : {1, 37, 128, 200, 300, 512, 700})
    for (int kind = 0; kind < 4; kind++) {  // none, causal, documents + causal, S2
      if (kind == 3 && S % 4 != 0) continue;
      std::vector<int32_t> doc(S);
      for (int64_t i = 0; i < S; i++) doc[i] = int32_t(i * 5 / std::max<int64_t>(S, 1));
      MaskView mask;
      mask.S = S;
      mask.H = H;
      mask.causal = kind != 0;
      mask.doc = kind == 2 ? doc.data() : nullptr;
      mask.s2_group = kind == 3 ? S / 4 : 0;
      CAPTURE(S);
      CAPTURE(kind);
      for (int64_t h = 0; h < H; h++) {
        CAPTURE(h);
        for (int64_t i0 = 0; i0 < S; i0 += v4::kRows) {
          CAPTURE(i0);
          check_query_tile<v4::kKeys>(mask, h, i0);  // the forward's, and v6's dQ at head_dim 64
          check_query_tile<64>(mask, h, i0);
        }
        for (int64_t T : {64, 128})
          for (int64_t wg_key = 0; wg_key < S; wg_key += 64)
            for (int64_t i0 = 0; i0 < S; i0 += T) check_key_tile(mask, h, wg_key, i0, T);
      }
    }
}

TEST_CASE("v6's dK/dV split: each group's heads taken once; enough blocks, else one head a block") {
  // llama3-1b at seq 2048 (8 kv heads x 16 key tiles) on 132 SMs: one head a block, 512 blocks.
  CHECK(v4::dkdv_head_splits(128, 4, 132) == 4);
  CHECK(v4::dkdv_head_splits(128, 4, 60) == 1);   // 128 blocks already two per SM
  CHECK(v4::dkdv_head_splits(128, 4, 100) == 2);  // 256 blocks: the fewest splits that fill it
  CHECK(v4::dkdv_head_splits(144, 4, 132) == 2);  // test_gpu_attention_variants' case: 2 heads a split
  CHECK(v4::dkdv_head_splits(512, 1, 132) == 1);  // no GQA: nothing to split
  CHECK(v4::dkdv_head_splits(8, 6, 132) == 6);    // short at every split: one head a block
  for (int64_t heads_per_kv : {1, 2, 3, 4, 6, 8})
    for (int splits = 1; splits <= heads_per_kv; splits++) {
      if (heads_per_kv % splits != 0) continue;
      CAPTURE(heads_per_kv);
      CAPTURE(splits);
      const int64_t Hkv = 3;
      std::vector<int> taken(Hkv * heads_per_kv, 0);
      for (int64_t kvh = 0; kvh < Hkv; kvh++)
        for (int s = 0; s < splits; s++) {
          const v4::HeadRange r = v4::split_heads(kvh, s, splits, heads_per_kv);
          CHECK(r.end - r.begin == heads_per_kv / splits);
          for (int64_t h = r.begin; h < r.end; h++) {
            CHECK(h / heads_per_kv == kvh);  // a query head of this kv head's group
            taken[h]++;
          }
        }
      for (int n : taken) CHECK(n == 1);
    }
}

// v7's persistent forward: the blocks' walks take every query tile exactly once, and under a
// causal mask the key tiles each block meets add up to nearly the same (the snake's point): the
// training shapes (llama3-1b, llama3-8b) and issue #13's seq 4096 on an H200's 132 SMs, and
// shapes with a partial last wave or fewer tiles than blocks.
TEST_CASE("v7's persistent schedule: every query tile once, longest first, balanced when causal") {
  struct Shape {
    int64_t S, H, B, blocks;
  };
  for (const Shape& sh : {Shape{2048, 32, 1, 132}, Shape{4096, 16, 1, 132}, Shape{2048, 32, 4, 132},
                          Shape{300, 16, 6, 132}, Shape{1000, 3, 2, 132}, Shape{16384, 16, 1, 114},
                          Shape{4096, 16, 1, 7}}) {
    CAPTURE(sh.S);
    CAPTURE(sh.H);
    CAPTURE(sh.B);
    CAPTURE(sh.blocks);
    const v4::QueryTileOrder order{sh.S, sh.H, sh.B};
    MaskView mask;
    mask.S = sh.S, mask.H = sh.H, mask.causal = true;
    std::vector<int> taken(order.count(), 0);
    std::vector<int64_t> work(sh.blocks, 0);  // key tiles a block's query tiles meet
    int64_t longest = 0;
    for (int64_t c = 0; c < sh.blocks; c++) {
      int64_t previous = -1;
      for (int64_t k = 0;; k++) {
        const int64_t u = v4::persistent_tile(c, k, sh.blocks, order.count());
        if (u < 0) {
          // Past its last tile every later k is too.
          CHECK(v4::persistent_tile(c, k + 1, sh.blocks, order.count()) < 0);
          break;
        }
        CHECK(u > previous);
        previous = u;
        taken[u]++;
        const v4::QueryTile t = order.at(u);
        const int64_t n = v4::key_band<v4::kKeys>(mask.keys(t.b, t.h, t.i0),
                                                  mask.keys(t.b, t.h, t.i0 + t.m - 1)).n;
        work[c] += n;
        longest = std::max(longest, n);
      }
    }
    for (int n : taken) CHECK(n == 1);
    // at(): each (b, h, query tile) once, rows within the sequence, longest first.
    std::vector<int> seen(order.count(), 0);
    for (int64_t u = 0; u < order.count(); u++) {
      const v4::QueryTile t = order.at(u);
      CHECK(t.i0 % v4::kRows == 0);
      CHECK(t.m == std::min<int64_t>(v4::kRows, sh.S - t.i0));
      seen[(t.b * sh.H + t.h) * order.per_sequence() + t.i0 / v4::kRows]++;
      if (u > 0) CHECK(t.i0 <= order.at(u - 1).i0);
    }
    for (int n : seen) CHECK(n == 1);
    // Balance: the busiest block within one longest tile of the mean, where every block has work.
    const int64_t total = std::accumulate(work.begin(), work.end(), int64_t(0));
    const int64_t busiest = *std::max_element(work.begin(), work.end());
    if (order.count() >= sh.blocks) CHECK(double(busiest) <= double(total) / sh.blocks + longest);
  }
}
