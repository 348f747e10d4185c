// Fragment layouts of the warp-level tensor-core instruction
//   mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type") as index functions,
// shared by the tensor-core attention kernels (cuda/attention/: v2 cuda_flash_attention_mma.cu,
// v3 flash_attention_v3*.cu, which loads them with ldmatrix) and a CPU test that simulates a warp
// (test/test_mma_layout.cpp). Plain C++ includes this header too: only the instruction wrappers
// at the end need nvcc.
#pragma once
#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#include <cuda_bf16.h>
#endif

#include "engine/host_device.h"

namespace llm {
namespace mma {

// One instruction: C (16 x 8, f32) += A (16 x 16, bf16) B (16 x 8, bf16), every operand spread
// over the 32 lanes of a warp. With group = lane / 4 and thread_in_group = lane % 4:
//   A: a0..a7 in 4 registers of 2 bf16; register r holds a(2r) in its low half, a(2r+1) high.
//      a0 a1: row group,     cols 2 tig, 2 tig + 1      a4 a5: row group,     cols 2 tig + 8, + 9
//      a2 a3: row group + 8, cols 2 tig, 2 tig + 1      a6 a7: row group + 8, cols 2 tig + 8, + 9
//   B (k x n): b0..b3 in 2 registers; register r holds b(2r) low, b(2r+1) high.
//      b0 b1: k = 2 tig, 2 tig + 1; n = group           b2 b3: k = 2 tig + 8, + 9; n = group
//   C: c0..c3 in 4 f32 registers.
//      c0 c1: row group, cols 2 tig, 2 tig + 1          c2 c3: row group + 8, same cols
// Both halves of a register are neighbours along k, so a register is one 32-bit load from a
// matrix stored with k contiguous: A row-major (m rows of k), B as its transpose (n rows of k).
struct Coord {
  int row, col;  // for B: row = k, col = n
};

LLM_HOST_DEVICE constexpr int group_of(int lane) { return lane >> 2; }
LLM_HOST_DEVICE constexpr int thread_in_group(int lane) { return lane & 3; }

// Where A element i (0..7) of `lane` sits in the 16 x 16 A tile.
LLM_HOST_DEVICE constexpr Coord a_coord(int lane, int i) {
  return {group_of(lane) + 8 * ((i >> 1) & 1), 2 * thread_in_group(lane) + (i & 1) + 8 * (i >> 2)};
}
// Where B element i (0..3) of `lane` sits in the 16 x 8 B tile, as (k, n).
LLM_HOST_DEVICE constexpr Coord b_coord(int lane, int i) {
  return {2 * thread_in_group(lane) + (i & 1) + 8 * (i >> 1), group_of(lane)};
}
// Where C element i (0..3) of `lane` sits in the 16 x 8 C tile.
LLM_HOST_DEVICE constexpr Coord c_coord(int lane, int i) {
  return {group_of(lane) + 8 * (i >> 1), 2 * thread_in_group(lane) + (i & 1)};
}

// Two neighbouring 16-bit elements (p 4-byte aligned) as one register, the lower address in the
// low half (little-endian: on the device a single 32-bit load).
template <class E>
LLM_HOST_DEVICE uint32_t load_pair(const E* p) {
  static_assert(sizeof(E) == 2, "fragments hold 16-bit elements");
#ifdef __CUDA_ARCH__
  return *reinterpret_cast<const uint32_t*>(p);
#else
  uint32_t w;
  std::memcpy(&w, p, sizeof(w));
  return w;
#endif
}

// A fragment of the 16 x 16 tile at `a`, row-major with `ld` elements per row (ld even).
template <class E>
LLM_HOST_DEVICE void load_a(const E* a, int ld, int lane, uint32_t frag[4]) {
  for (int r = 0; r < 4; r++) {
    const Coord c = a_coord(lane, 2 * r);
    frag[r] = load_pair(a + c.row * ld + c.col);
  }
}

// B fragment of the 16 (k) x 8 (n) tile given by its transpose `bt`: 8 rows (n) of 16 (k),
// row-major with `ld` elements per row (ld even).
template <class E>
LLM_HOST_DEVICE void load_b(const E* bt, int ld, int lane, uint32_t frag[2]) {
  for (int r = 0; r < 2; r++) {
    const Coord c = b_coord(lane, 2 * r);
    frag[r] = load_pair(bt + c.col * ld + c.row);
  }
}

// f32 -> bf16 bits, round to nearest even (inputs here are finite), and back.
LLM_HOST_DEVICE uint16_t bf16_bits(float x) {
#ifdef __CUDA_ARCH__
  return __bfloat16_as_ushort(__float2bfloat16_rn(x));
#else
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
#endif
}
LLM_HOST_DEVICE float bf16_value(uint16_t bits) {
  const uint32_t u = uint32_t(bits) << 16;
  float x;
  std::memcpy(&x, &u, sizeof(x));
  return x;
}
LLM_HOST_DEVICE uint32_t pack_bf16(float lo, float hi) {
  return uint32_t(bf16_bits(lo)) | uint32_t(bf16_bits(hi)) << 16;
}

// Re-using a product as the next product's A operand (P V after Q K^T) without moving data: a
// 16 x 16 k-slice kk of a 16-row C result spans its 8-column n-tiles 2 kk and 2 kk + 1, and
//   A register r = (a(2r), a(2r+1)) = row group + 8 (r & 1), cols 2 tig + 8 (r >> 1) + {0, 1}
//                = C elements c(2 (r & 1)), c(2 (r & 1) + 1) of n-tile 2 kk + (r >> 1),
// because c(2 (r & 1)) sits at row group + 8 (r & 1), col 2 tig of its n-tile. So each lane
// builds its A fragment from its own C registers.
LLM_HOST_DEVICE constexpr int a_reg_c_tile(int kk, int r) { return 2 * kk + (r >> 1); }
LLM_HOST_DEVICE constexpr int a_reg_c_elem(int r) { return 2 * (r & 1); }

// The A fragment of k-slice kk of the C fragments c (one float[4] per n-tile), rounded to bf16.
LLM_HOST_DEVICE void c_to_a(const float (*c)[4], int kk, uint32_t a[4]) {
  for (int r = 0; r < 4; r++) {
    const float* x = c[a_reg_c_tile(kk, r)] + a_reg_c_elem(r);
    a[r] = pack_bf16(x[0], x[1]);
  }
}

// The same slice as a bf16 pair hi + lo (lo: hi's rounding remainder): about 16 significant bits,
// for operands whose bf16 rounding would cost the backward its accuracy (see the kernels).
LLM_HOST_DEVICE void c_to_a_split(const float (*c)[4], int kk, uint32_t hi[4], uint32_t lo[4]) {
  for (int r = 0; r < 4; r++) {
    const float* x = c[a_reg_c_tile(kk, r)] + a_reg_c_elem(r);
    hi[r] = pack_bf16(x[0], x[1]);
    lo[r] = pack_bf16(x[0] - bf16_value(hi[r] & 0xffffu), x[1] - bf16_value(hi[r] >> 16));
  }
}

// ldmatrix.sync.aligned.m8n8.x4.shared.b16 loads four 8 x 8 matrices of 16-bit elements: lanes
// 8 i .. 8 i + 7 each give the address of one row (8 contiguous elements, 16 bytes) of matrix i,
// and every lane receives one register per matrix. Without .trans, lane l's register i holds
// row l / 4, cols 2 (l % 4), + 1 of matrix i; with .trans, rows 2 (l % 4), + 1 of col l / 4.
// Those are exactly A's and B's per-register pieces above, so one instruction fills a fragment:
//   A (16 x 16, row-major): matrices (rows 0-7, cols 0-7), (8-15, 0-7), (0-7, 8-15), (8-15, 8-15)
//     are a0a1, a2a3, a4a5, a6a7.
//   B of two n-tiles from B^T (16 n rows of 16 k, row-major): matrices (n 0-7, k 0-7),
//     (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15) are b0b1, b2b3 of n-tile 0, then 1.
//   B of two n-tiles from B itself (16 k rows of 16 n, row-major), with .trans: matrices
//     (k 0-7, n 0-7), (k 8-15, n 0-7), (k 0-7, n 8-15), (k 8-15, n 8-15), in the same order.
// The row (and column of its first element) in the 16 x 16 region that `lane` gives the address
// of, for A or for B with .trans (the same order of matrices), and for B^T.
LLM_HOST_DEVICE constexpr Coord ldsm_row_a(int lane) {
  return {(lane & 7) + 8 * ((lane >> 3) & 1), 8 * (lane >> 4)};
}
LLM_HOST_DEVICE constexpr Coord ldsm_row_bt(int lane) {
  return {(lane & 7) + 8 * (lane >> 4), 8 * ((lane >> 3) & 1)};
}

#ifdef __CUDACC__
// Four 8 x 8 matrices from shared memory, `row` being this lane's row address (16-byte aligned).
template <bool kTrans>
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void* row) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  if constexpr (kTrans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

// c += a b on the tensor cores (sm_80 and newer); every lane of the warp must call it.
__device__ __forceinline__ void mma_16x8x16(float c[4], const uint32_t a[4], const uint32_t b[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#endif

}  // namespace mma
}  // namespace llm
