// bitsandbytes' blockwise 8-bit optimizer state on CUDA, for any update rule (and torchao's, 8 or
// 4 bits a code): the CPU's algorithm (engine/cpu/blockwise_8bit.h). Used by cuda_adamw_8bit.cu,
// cuda_lion.cu, cuda_ademamix.cu and cuda_torchao_adamw.cu.
#pragma once
#include <array>

#include "cuda/cuda_common.cuh"
#include "engine/quant_map.h"

namespace llm {

// The moments' codes, absmax and maps (signed or unsigned, 1 KiB each; a 4-bit map fills the
// first 16 entries) as one kernel argument: no per-device constant memory to set up.
template <int kMoments>
struct QuantMomentsArg {
  uint8_t* codes[kMoments];
  float* absmax[kMoments];
  float map[kMoments][256];
  bool is_signed[kMoments];
};

constexpr int kLanes = 32;
constexpr int kQuantBlocksPerCta = kThreads / kLanes;  // one warp per quantisation block
constexpr int kPerLane = static_cast<int>(kQuantBlock / kLanes);
static_assert(kQuantBlock % kLanes == 0 && kThreads == 256, "a warp owns whole blocks; a thread one map entry");

// Warp w of the CTA owns quantisation block blockIdx.x * 8 + w; lane l its elements l, l + 32,
// ... (coalesced). The moments stay in registers between the update and the requantisation, and
// the block's absmax is a warp reduction (fmaxf is exact: the order does not matter). 4-bit codes
// pack two a byte: lane l (even) writes its element's code and lane l + 1's, which sit side by side.
template <int kMoments, class BlockQuant, class G, class Update>
__global__ void blockwise_8bit_kernel(float* param, const G* grad, int64_t n, QuantMomentsArg<kMoments> q,
                                      Update update) {
  constexpr int kBits = BlockQuant::kBits;
  __shared__ float map[kMoments][256];
  for (int k = 0; k < kMoments; k++) map[k][threadIdx.x] = q.map[k][threadIdx.x];
  __syncthreads();
  const int lane = threadIdx.x % kLanes;
  const int64_t b = int64_t(blockIdx.x) * kQuantBlocksPerCta + threadIdx.x / kLanes, lo = b * kQuantBlock;
  if (lo >= n) return;  // the whole warp: no block left for it
  float values[kMoments][kPerLane], block_max[kMoments], absmax[kMoments];
  for (int k = 0; k < kMoments; k++) {
    block_max[k] = 0.0f;
    absmax[k] = q.absmax[k][b];
  }
#pragma unroll
  for (int e = 0; e < kPerLane; e++) {
    const int64_t i = lo + lane + int64_t(e) * kLanes;
    if (i >= n) continue;
    float m[kMoments];
    for (int k = 0; k < kMoments; k++) m[k] = map[k][read_code<kBits>(q.codes[k], i)] * absmax[k];
    param[i] = update(param[i], to_f32(grad[i]), m);
    for (int k = 0; k < kMoments; k++) {
      values[k][e] = m[k];
      block_max[k] = fmaxf(block_max[k], fabsf(m[k]));
    }
  }
  for (int k = 0; k < kMoments; k++) {
    for (int off = kLanes / 2; off > 0; off >>= 1)
      block_max[k] = fmaxf(block_max[k], __shfl_xor_sync(0xffffffffu, block_max[k], off));
    const float scale = BlockQuant::prepare(block_max[k]);
#pragma unroll
    for (int e = 0; e < kPerLane; e++) {
      const int64_t i = lo + lane + int64_t(e) * kLanes;
      const uint8_t code = i < n ? BlockQuant::code(map[k], values[k][e], scale, q.is_signed[k]) : 0;
      if constexpr (kBits == 8) {
        if (i < n) q.codes[k][i] = code;
      } else {  // every lane takes part in the shuffle; 4-bit moments are whole blocks
        const uint8_t next = static_cast<uint8_t>(__shfl_down_sync(0xffffffffu, code, 1));
        if (i < n && lane % 2 == 0) q.codes[k][i >> 1] = static_cast<uint8_t>((code << 4) | next);
      }
    }
    if (lane == 0) q.absmax[k][b] = BlockQuant::stored(block_max[k]);
  }
}

// One update of f32 `param` from `grad` (f32 or bf16) on `stream`; moments are {codes, absmax,
// signed map?} as the CPU's QuantMoment, requantised as BlockQuant says (engine/quant_map.h).
template <int kMoments, class BlockQuant = BnbBlockQuant, class Update>
void launch_blockwise_8bit(const char* op, cudaStream_t stream, Tensor& param, const Tensor& grad,
                           const std::array<std::pair<Tensor*, Tensor*>, kMoments>& moments,
                           const std::array<bool, kMoments>& is_signed, Update update) {
  LLM_CHECK(param.dtype() == DType::f32, std::string(op) + " on CUDA keeps f32 master weights; got " + param.str());
  LLM_CHECK(grad.numel() == param.numel(), std::string(op) + ": grad " + grad.str() + " for " + param.str());
  constexpr int kBits = BlockQuant::kBits;
  static const std::array<float, 1 << kBits> signed_map = BlockQuant::map(true), unsigned_map = BlockQuant::map(false);
  QuantMomentsArg<kMoments> q{};
  for (int k = 0; k < kMoments; k++) {
    require_quantised_moment(op, param, *moments[k].first, *moments[k].second, kBits);
    q.codes[k] = moments[k].first->template data<uint8_t>();
    q.absmax[k] = moments[k].second->template data<float>();
    q.is_signed[k] = is_signed[k];
    const std::array<float, 1 << kBits>& map = is_signed[k] ? signed_map : unsigned_map;
    std::copy(map.begin(), map.end(), q.map[k]);
  }
  const int64_t n = param.numel();
  if (n == 0) return;
  const int64_t blocks = (n + kQuantBlock - 1) / kQuantBlock;
  const unsigned ctas = static_cast<unsigned>((blocks + kQuantBlocksPerCta - 1) / kQuantBlocksPerCta);
  dispatch_float(op, grad, [&](auto tag) {
    using G = decltype(tag);
    blockwise_8bit_kernel<kMoments, BlockQuant><<<ctas, kThreads, 0, stream>>>(param.data<float>(), grad.data<G>(), n,
                                                                             q, update);
  });
}

}  // namespace llm
