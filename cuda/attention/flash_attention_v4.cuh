// defines: the machinery the v4 attention kernels share (flash_attention_v4.cu, the forward;
// flash_attention_v4_dkdv.cuh and the backwards): the block of one producer and kConsumers consumer
// warpgroups and its register split, TMA tile loads into 1024-aligned shared memory, the wgmma
// descriptors of those tiles (wgmma_layout.h says why they are what they are), the tensor maps and
// the consumers' ping-pong.
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

// FlashAttention-3's ping-pong of the two consumer warpgroups, for kernels in which both take the
// same number of turns (a turn: issuing a group of products): turns alternate from warpgroup 0,
// so that the tensor cores run one warpgroup's products while the other does its element-wise
// work, where in lockstep both would wait on the products and then leave the tensor cores idle
// together. Turn k of warpgroup 0 waits (named barrier 1) for warpgroup 1's turn k - 1, or for
// start() before its first; turn k of warpgroup 1 (barrier 2) for warpgroup 0's turn k. Every
// turn's end releases the other warpgroup, and finish() takes warpgroup 1's last release, so no
// arrival is left over. A warpgroup arrives on a barrier at most once before the other syncs on
// it: its next arrival there follows a turn that waited for the other's sync. kOn false: no-ops.
template <bool kOn>
struct PingPong {
  int wg = threadIdx.x / 128 - 1;  // 0 or 1: the consumer warpgroup
  __device__ void start() const {
    if (kOn && wg == 1) ptx::named_barrier_arrive<128 * kConsumers>(1);
  }
  __device__ void begin() const {
    if (kOn) ptx::named_barrier_sync<128 * kConsumers>(1 + wg);
  }
  __device__ void end() const {
    if (kOn) ptx::named_barrier_arrive<128 * kConsumers>(2 - wg);
  }
  __device__ void finish() const {
    if (kOn && wg == 0) ptx::named_barrier_sync<128 * kConsumers>(1);
  }
};
#endif

}  // namespace v4
}  // namespace llm
