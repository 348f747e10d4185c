// bitsandbytes' blockwise 8-bit optimizer state on CUDA, for any update rule (and torchao's, 8 or
// 4 bits a code): the CPU's algorithm (engine/cpu/blockwise_8bit.h). Used by cuda_adamw_8bit.cu,
// cuda_lion.cu, cuda_ademamix.cu and cuda_torchao_adamw.cu.
#pragma once
#include <array>

#include "cuda/cuda_common.cuh"
#include "engine/quant_map.h"

namespace llm {

// The moments' codes, absmax and maps with their guides (signed or unsigned, about 4 KiB each)
// as one kernel argument: no per-device constant memory to set up. 8-12 KiB with two or three
// moments: above the 4 KiB of kernel arguments before CUDA 12.1, within its 32 KiB.
template <int kMoments, int kEntries>
struct QuantMomentsArg {
  uint8_t* codes[kMoments];
  float* absmax[kMoments];
  QuantMap<kEntries> map[kMoments];
  bool is_signed[kMoments];
};

constexpr int kLanes = 32;
constexpr int kQuantBlocksPerCta = kThreads / kLanes;  // one warp per quantisation block
constexpr int kPerLane = static_cast<int>(kQuantBlock / kLanes);
static_assert(kQuantBlock % kLanes == 0, "a warp owns whole blocks");

// One quantisation block by one warp: lane l takes its elements l, l + 32, ... (coalesced). Every
// load comes before any store: `param` is a float* that may alias the gradient and the codes as far
// as the compiler knows, so a loop that loaded, updated and stored an element at a time waited out a
// memory round trip per element (14.7-33.9% of HBM bandwidth on 2026-12-04). The moments stay in
// registers between the update and the requantisation, and the block's absmax is a warp reduction
// (fmaxf is exact: the order does not matter). 4-bit codes pack two a byte: lane l (even) writes
// its element's code and lane l + 1's, which sit side by side.
template <int kMoments, class BlockQuant, class G, class Update>
__device__ __forceinline__ void update_quant_block(int64_t b, float* param, const G* grad, int64_t n,
                                                   const QuantMomentsArg<kMoments, 1 << BlockQuant::kBits>& q,
                                                   const QuantMap<1 << BlockQuant::kBits>* map, const Update& update) {
  constexpr int kBits = BlockQuant::kBits;
  const int lane = threadIdx.x % kLanes;
  const int64_t lo = b * kQuantBlock;
  float p[kPerLane], g[kPerLane], block_max[kMoments], absmax[kMoments];
  int codes[kMoments][kPerLane];
#pragma unroll
  for (int k = 0; k < kMoments; k++) {
    block_max[k] = 0.0f;
    absmax[k] = q.absmax[k][b];
  }
#pragma unroll
  for (int e = 0; e < kPerLane; e++) {
    const int64_t i = lo + lane + int64_t(e) * kLanes;
    if (i >= n) continue;
    p[e] = param[i];
    g[e] = to_f32(grad[i]);
    for (int k = 0; k < kMoments; k++) codes[k][e] = read_code<kBits>(q.codes[k], i);
  }
  float values[kMoments][kPerLane];
#pragma unroll
  for (int e = 0; e < kPerLane; e++) {
    const int64_t i = lo + lane + int64_t(e) * kLanes;
    if (i >= n) continue;
    float m[kMoments];
    for (int k = 0; k < kMoments; k++) m[k] = map[k].value[codes[k][e]] * absmax[k];
    param[i] = update(p[e], g[e], m);
    for (int k = 0; k < kMoments; k++) {
      values[k][e] = m[k];
      block_max[k] = fmaxf(block_max[k], fabsf(m[k]));
    }
  }
#pragma unroll
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

// CTAs an SM holds at once, as the registers allow: three at 8 bits with up to two moments (77
// registers); ptxas spills AdEMAMix's three moments and torchao's 4-bit pairs at that cap.
constexpr int min_resident_ctas(int moments, int bits) { return moments > 2 || bits == 4 ? 2 : 3; }

// One wave of CTAs, each copying the maps into shared memory once and its warps then walking the
// quantisation blocks (warp w of CTA c: blocks 8c + w, then a grid's worth of warps on). The copy
// reads the kernel argument at a different address in each lane, which the constant cache serves
// one address at a time: about 2000 cycles for two maps, as long as 2048 elements' update takes an
// SM at full bandwidth, so a CTA a few blocks long would spend half its time on it.
template <int kMoments, class BlockQuant, class G, class Update>
__global__ void __launch_bounds__(kThreads, min_resident_ctas(kMoments, BlockQuant::kBits)) blockwise_8bit_kernel(float* param, const G* grad, int64_t n,
                                      QuantMomentsArg<kMoments, 1 << BlockQuant::kBits> q, Update update) {
  using Map = QuantMap<1 << BlockQuant::kBits>;
  static_assert(sizeof(Map) % sizeof(uint32_t) == 0, "maps are copied a word at a time");
  __shared__ Map map[kMoments];
  for (int k = 0; k < kMoments; k++) {
    const uint32_t* from = reinterpret_cast<const uint32_t*>(&q.map[k]);
    uint32_t* to = reinterpret_cast<uint32_t*>(&map[k]);
    for (int w = threadIdx.x; w < static_cast<int>(sizeof(Map) / sizeof(uint32_t)); w += blockDim.x) to[w] = from[w];
  }
  __syncthreads();
  const int64_t blocks = (n + kQuantBlock - 1) / kQuantBlock, warps = int64_t(gridDim.x) * kQuantBlocksPerCta;
  for (int64_t b = int64_t(blockIdx.x) * kQuantBlocksPerCta + threadIdx.x / kLanes; b < blocks; b += warps)
    update_quant_block<kMoments, BlockQuant>(b, param, grad, n, q, map, update);
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
  using Map = QuantMap<1 << kBits>;
  static const Map signed_map = BlockQuant::table(true), unsigned_map = BlockQuant::table(false);
  QuantMomentsArg<kMoments, 1 << kBits> q{};
  for (int k = 0; k < kMoments; k++) {
    require_quantised_moment(op, param, *moments[k].first, *moments[k].second, kBits);
    q.codes[k] = moments[k].first->template data<uint8_t>();
    q.absmax[k] = moments[k].second->template data<float>();
    q.is_signed[k] = is_signed[k];
    q.map[k] = is_signed[k] ? signed_map : unsigned_map;
  }
  const int64_t n = param.numel();
  if (n == 0) return;
  const int64_t blocks = (n + kQuantBlock - 1) / kQuantBlock;
  dispatch_float(op, grad, [&](auto tag) {
    using G = decltype(tag);
    const auto kernel = blockwise_8bit_kernel<kMoments, BlockQuant, G, Update>;
    static const int64_t resident = resident_ctas(kernel, kThreads);
    const unsigned ctas = static_cast<unsigned>(std::min((blocks + kQuantBlocksPerCta - 1) / kQuantBlocksPerCta, resident));
    kernel<<<ctas, kThreads, 0, stream>>>(param.data<float>(), grad.data<G>(), n, q, update);
  });
}

}  // namespace llm
