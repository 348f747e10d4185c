// defines: wgmma::acc_coord, wgmma::a_coord, sw128, tile_offset, kmajor_start, mnmajor_start,
// make_desc: the layouts the v4 attention kernel (flash_attention_v4.cu) relies on, as index
// functions that plain C++ includes too, so test/test_wgmma_layout.cpp checks them on the CPU
// against the PTX ISA's own definitions ("Asynchronous Warpgroup Level Matrix ... Register
// Fragments" and "Shared Memory Matrix Layout") with no GPU.
//
// Tiles in shared memory: a (rows x D) bf16 tile (D = 64 or 128) arrives by TMA as D / 64 boxes of
// 64 columns, each box `rows` rows of 128 bytes with the 128-byte swizzle, one after the other.
// The same bytes serve wgmma as a K-major operand (Q and K in S = Q K^T: k = head dim, 64 of it
// per box) and as an MN-major one (V in O = P V: k = key row, n = head dim).
#pragma once
#include <cstdint>

#include "cuda/attention/mma_fragments.cuh"

namespace llm {
namespace wgmma {

using mma::Coord;

// The accumulator D of wgmma.m64nNk16 (f32): thread t of the warpgroup (warp w = t / 32, lane l)
// holds N / 2 floats; element i sits at row 16 w + l / 4 + 8 ((i / 2) % 2), column
// 8 (i / 4) + 2 (l % 4) + i % 2. Per warp that is N / 8 m16n8 C fragments side by side, element i
// being element i % 4 of n-tile i / 4: the kernels index it as float[N / 8][4].
LLM_HOST_DEVICE constexpr Coord acc_coord(int thread, int i) {
  const int lane = thread % 32;
  return {16 * (thread / 32) + mma::c_coord(lane, i % 4).row,
          8 * (i / 4) + mma::c_coord(lane, i % 4).col};
}
// The register A of wgmma.m64nNk16 (bf16, elements a0..a7 in four 32-bit registers): warp w holds
// rows 16 w .. 16 w + 15 of the 64 x 16 slice, as mma.m16n8k16 holds its A. So a C fragment pair
// becomes an A fragment with mma::c_to_a, as in v2 and v3.
LLM_HOST_DEVICE constexpr Coord a_coord(int thread, int i) {
  return {16 * (thread / 32) + mma::a_coord(thread % 32, i).row, mma::a_coord(thread % 32, i).col};
}

constexpr uint32_t kRowBytes = 128;    // one swizzled row: 64 bf16
constexpr int kBoxCols = 64;           // head-dim columns per TMA box
constexpr uint32_t kAtomBytes = 1024;  // 8 rows: the span the swizzle repeats over

// The 128-byte swizzle (TMA's CU_TENSOR_MAP_SWIZZLE_128B, wgmma's swizzle mode 1): the 16-byte
// piece (address bits 4-6) is XORed with the row within the 1024-byte atom (bits 7-9). Applied to
// a byte offset from a 1024-byte aligned base, so offset and address swizzle alike.
LLM_HOST_DEVICE constexpr uint32_t sw128(uint32_t offset) {
  return offset ^ (((offset >> 7) & 7u) << 4);
}

// Where element (row, col) of a rows x D tile sits, in bytes from the tile's 1024-aligned start.
LLM_HOST_DEVICE constexpr uint32_t tile_offset(int rows, int row, int col) {
  return uint32_t(col / kBoxCols) * rows * kRowBytes +
         sw128(uint32_t(row) * kRowBytes + uint32_t(col % kBoxCols) * 2);
}

// K-major operand (A = Q rows, or B = K rows, k = head dim): k-step kk (columns 16 kk .. + 15)
// of the tile's rows row0 .. starts at this offset; the 8-row groups are kAtomBytes apart (the
// descriptor's stride byte offset); the leading byte offset is unused by a swizzled K-major
// layout. Within a box, a k-step moves the start by 32 bytes: the hardware swizzles the address it
// forms, which is the one TMA swizzled (test_wgmma_layout checks every element).
LLM_HOST_DEVICE constexpr uint32_t kmajor_start(int rows, int row0, int kk) {
  return uint32_t(kk / 4) * rows * kRowBytes + uint32_t(row0) * kRowBytes + uint32_t(kk % 4) * 32;
}
// MN-major operand (B = V: k = key row, n = head dim): k-step kk (key rows 16 kk .. + 15) starts
// 16 rows down; its two 8-row groups are kAtomBytes apart (stride byte offset) and the 64-column
// boxes along n are rows * kRowBytes apart (leading byte offset).
LLM_HOST_DEVICE constexpr uint32_t mnmajor_start(int kk) { return uint32_t(kk) * 16 * kRowBytes; }
LLM_HOST_DEVICE constexpr uint32_t mnmajor_lbo(int rows) { return uint32_t(rows) * kRowBytes; }

// The 64-bit shared-memory matrix descriptor (PTX ISA "Matrix Descriptor Format"): start address,
// leading and stride byte offsets, each (x & 0x3FFFF) >> 4, in bits 0-13, 16-29, 32-45; base
// offset 0 (every atom 1024-aligned); swizzle mode 1 (128-byte) in bits 62-63.
LLM_HOST_DEVICE constexpr uint64_t desc_field(uint32_t x) { return uint64_t((x & 0x3FFFFu) >> 4); }
LLM_HOST_DEVICE constexpr uint64_t make_desc(uint32_t smem_addr, uint32_t lbo, uint32_t sbo) {
  return desc_field(smem_addr) | desc_field(lbo) << 16 | desc_field(sbo) << 32 | uint64_t(1) << 62;
}

}  // namespace wgmma
}  // namespace llm
