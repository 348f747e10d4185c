// flash_v5_backward: FlashAttention-3's five products instead of seven. The dK/dV kernel also
// writes dS^T (bf16) to shared memory and, after a barrier of both consumers, warpgroup c computes
// dQ's head-dim columns 64 c .. 64 c + 63 of the query tile, dS (64 queries x the block's 128
// keys, read MN-major) times K's matching box, and adds them into an f32 buffer with atomics;
// one pass then scales and rounds it to bf16. No second kernel recomputes S and dP, but the order
// of the atomic additions varies run to run: not deterministic. Layout-checked on the CPU
// (test_wgmma_layout); on an H200 (bench/results/2026-11-30-gpu-run.md) it passed within the
// criterion but ran slower than v4's two kernels, so it runs only when forced (flash_variants.cu).
//
// flash_v8_backward: v5's with v6's GQA splits (atomic_dq_backward).
#include "cuda/attention/flash_attention_v4.h"
#include "cuda/attention/flash_attention_v4_dkdv.cuh"

namespace llm {

namespace {

// dq = bf16(scale x dq_sum), n elements: the atomic-dQ backward's last pass.
__global__ void scale_to_bf16_kernel(const float* dq_sum, float scale, bf16* dq, int64_t n) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x)
    dq[e] = __float2bfloat16(scale * dq_sum[e]);
}

// v5's backward: the dK/dV kernel with dQ by atomics into an f32 sum, then its scaled bf16 copy;
// v8's splits its GQA groups over blocks as v6's (dQ's atomics do not care which block adds).
void atomic_dq_backward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& dout, const Tensor& lse, const Tensor& delta, const MaskView& mask,
                        bool split_groups, Tensor& dq, Tensor& dk, Tensor& dv) {
  const Problem<bf16> p = make_problem<bf16>(q, k, v, mask);
  const int64_t blocks = p.Hkv * q.size(0) * ((p.S + kRows - 1) / kRows);
  const int splits = split_groups ? dkdv_head_splits(blocks, p.heads_per_kv, kSplitSms) : 1;
  Tensor dq_sum = Tensor::empty(q.shape(), DType::f32, q.device());
  CUDA_CHECK(cudaMemsetAsync(dq_sum.data_ptr(), 0, dq_sum.nbytes(), stream));
  dispatch_head_dim(q.size(3), [&](auto dim) {
    launch_dkdv<decltype(dim)::value, kNarrow, true>(stream, p, q, k, v, dout, lse, delta, splits, dk,
                                                     dv, dq_sum.data<float>());
  });
  const int64_t n = dq.numel();
  scale_to_bf16_kernel<<<static_cast<unsigned>(std::min<int64_t>((n + 255) / 256, 4096)), 256, 0,
                         stream>>>(dq_sum.data<float>(), p.scale, dq.data<bf16>(), n);
}

}  // namespace

void flash_v5_backward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& dout, const Tensor& lse, const Tensor& delta,
                       const MaskView& mask, Tensor& dq, Tensor& dk, Tensor& dv) {
  atomic_dq_backward(stream, q, k, v, dout, lse, delta, mask, false, dq, dk, dv);
}

void flash_v8_backward(cudaStream_t stream, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& dout, const Tensor& lse, const Tensor& delta,
                       const MaskView& mask, Tensor& dq, Tensor& dk, Tensor& dv) {
  atomic_dq_backward(stream, q, k, v, dout, lse, delta, mask, true, dq, dk, dv);
}

}  // namespace llm
