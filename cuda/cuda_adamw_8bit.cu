// defines: CudaBackend::adamw_8bit (bitsandbytes' blockwise 8-bit AdamW; the CPU's algorithm)
#include "cuda/cuda_common.cuh"
#include "engine/quant_map.h"

namespace llm {

namespace {

// Both maps travel as a kernel argument (2 KiB): no per-device constant memory to set up.
struct QuantMaps {
  float m[256], v[256];  // signed (first moment), unsigned (second moment)
};

constexpr int kPerThread = kQuantBlock / kThreads;  // 8 elements of the block per thread

// One thread block per quantisation block. Thread t owns elements t, t + 256, ... (coalesced);
// the moments stay in registers between the update and the requantisation, as on the CPU.
template <class G>
__global__ void adamw_8bit_kernel(float* param, const G* grad, uint8_t* m_codes, float* m_absmax,
                                  uint8_t* v_codes, float* v_absmax, int64_t n, AdamWArgs args,
                                  QuantMaps maps) {
  __shared__ float qm[256], qv[256], scratch[32];
  qm[threadIdx.x] = maps.m[threadIdx.x];
  qv[threadIdx.x] = maps.v[threadIdx.x];
  __syncthreads();
  const int64_t b = blockIdx.x, lo = b * kQuantBlock;
  const float ma = m_absmax[b], va = v_absmax[b];
  float m[kPerThread], v[kPerThread];
  float m_max = 0.0f, v_max = 0.0f;
#pragma unroll
  for (int k = 0; k < kPerThread; k++) {
    const int64_t i = lo + threadIdx.x + int64_t(k) * kThreads;
    if (i >= n) continue;
    m[k] = qm[m_codes[i]] * ma;
    v[k] = qv[v_codes[i]] * va;
    param[i] = adamw_element(param[i], to_f32(grad[i]), m[k], v[k], args);
    m_max = fmaxf(m_max, fabsf(m[k]));
    v_max = fmaxf(v_max, v[k]);
  }
  m_max = block_max(m_max, scratch);
  v_max = block_max(v_max, scratch);
  const float m_inv = m_max > 0.0f ? 1.0f / m_max : 0.0f, v_inv = v_max > 0.0f ? 1.0f / v_max : 0.0f;
#pragma unroll
  for (int k = 0; k < kPerThread; k++) {
    const int64_t i = lo + threadIdx.x + int64_t(k) * kThreads;
    if (i >= n) continue;
    m_codes[i] = quantize_nearest(qm, m[k] * m_inv);
    v_codes[i] = quantize_nearest(qv, v[k] * v_inv);
  }
  if (threadIdx.x == 0) {
    m_absmax[b] = m_max;
    v_absmax[b] = v_max;
  }
}

}  // namespace

void CudaBackend::adamw_8bit(Tensor& param, const Tensor& grad, Tensor& m_codes, Tensor& m_absmax,
                             Tensor& v_codes, Tensor& v_absmax, const AdamWArgs& args) {
  LLM_CHECK(param.dtype() == DType::f32, "adamw_8bit on CUDA keeps f32 master weights; got " + param.str());
  LLM_CHECK(grad.numel() == param.numel(), "adamw_8bit: grad " + grad.str() + " for " + param.str());
  require_adamw_8bit_state(param, m_codes, m_absmax, v_codes, v_absmax);
  static_assert(kQuantBlock % kThreads == 0, "a quantisation block is whole threads' elements");
  static const QuantMaps maps = [] {
    QuantMaps q;
    const std::array<float, 256> m = dynamic_quant_map(true), v = dynamic_quant_map(false);
    std::copy(m.begin(), m.end(), q.m);
    std::copy(v.begin(), v.end(), q.v);
    return q;
  }();
  const int64_t n = param.numel();
  if (n == 0) return;
  activate();
  dispatch_float("adamw_8bit", grad, [&](auto tag) {
    using G = decltype(tag);
    adamw_8bit_kernel<<<static_cast<unsigned>(m_absmax.numel()), kThreads, 0, stream_>>>(
        param.data<float>(), grad.data<G>(), m_codes.data<uint8_t>(), m_absmax.data<float>(),
        v_codes.data<uint8_t>(), v_absmax.data<float>(), n, args, maps);
  });
  CUDA_CHECK_OP("adamw_8bit", param, grad, m_codes, v_codes);
}

}  // namespace llm
