// defines: the machinery the v4 attention kernels share (flash_attention_v4.cu, the forward;
// flash_attention_v4_backward.cu): the block of one producer and kConsumers consumer warpgroups
// and its register split, TMA tile loads into 1024-aligned shared memory, the wgmma descriptors
// of those tiles (wgmma_layout.h says why they are what they are) and the tensor maps.
#pragma once
#include <cuda.h>

#include "cuda/attention/cuda_attention_tiles.cuh"
#include "cuda/attention/flash_v4_tiles.h"
#include "cuda/attention/hopper_ptx.cuh"
#include "cuda/attention/wgmma_layout.h"

namespace llm {
namespace v4 {

constexpr int kBlockThreads = 128 * (1 + kConsumers);
// The producer warpgroup's registers and each consumer's after setmaxnreg (one block per SM);
// the producer keeps enough for the backward's per-row mask spans.
constexpr int kProducerRegs = 40, kConsumerRegs = 232;
static_assert(128 * (kProducerRegs + kConsumers * kConsumerRegs) <= 65536, "the SM's registers");
// Dynamic shared memory is asked for with this much to spare, to align it to 1024 bytes.
constexpr size_t kSmemSlack = wgmma::kAtomBytes;

// The tensor map of a (B, S, heads, D) bf16 tensor: boxes of 64 head-dim columns x `rows` rows of
// one head, 128-byte swizzled; rows past S read as zeros (flash_attention_v4.cu).
CUtensorMap head_map(const Tensor& t, int rows);

#ifdef LLM_SM90A
// TMA's 128-byte swizzle and the descriptors assume 1024-aligned tiles.
__device__ __forceinline__ unsigned char* align_smem(unsigned char* raw) {
  return raw + (-ptx::smem_addr(raw) & (wgmma::kAtomBytes - 1));
}

// Issues the TMA copies of one R-row tile (rows row0.., head `head` of batch b; the map's boxes
// have R rows) into dst, its bytes counted on bar: one box per 64 head-dim columns. The arrival
// is this thread's on bar.
template <int R, int D>
__device__ void load_tile(unsigned char* dst, const CUtensorMap* map, uint64_t* bar, int64_t head,
                          int64_t row0, int64_t b) {
  ptx::mbar_arrive_expect_tx(bar, R * D * 2);
#pragma unroll
  for (int c = 0; c < D / wgmma::kBoxCols; c++)
    ptx::tma_load_4d(dst + c * R * wgmma::kRowBytes, map, bar, wgmma::kBoxCols * c, int(head),
                     int(row0), int(b));
}

// The descriptor of k-step kk of an R-row tile at shared address `tile`: K-major (k = head dim)
// from its row row0 (64 rows: a warpgroup's A, or N rows of B), or MN-major (k = row).
template <int R>
__device__ __forceinline__ uint64_t kmajor_desc(uint32_t tile, int row0, int kk) {
  return wgmma::make_desc(tile + wgmma::kmajor_start(R, row0, kk), 16, wgmma::kAtomBytes);
}
template <int R>
__device__ __forceinline__ uint64_t mnmajor_desc(uint32_t tile, int kk) {
  return wgmma::make_desc(tile + wgmma::mnmajor_start(kk), wgmma::mnmajor_lbo(R),
                          wgmma::kAtomBytes);
}
#endif

}  // namespace v4
}  // namespace llm
