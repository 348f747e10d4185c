// defines: CudaBackend::attention_forward, attention_backward (eager attention: cuBLASLt
// strided-batched GEMMs over the (B, S, H, D) head layout, f32 probabilities (B, H, S, S))
#include <cmath>

#include "cuda/cuda_common.cuh"

namespace llm {

namespace {

// Softmax in place over each probability row ((b * H + h) * S + i), keys after i masked when
// causal (probability 0). One block per row.
__global__ void softmax_rows_kernel(float* probs, int64_t S, bool causal) {
  __shared__ float shared[32];
  float* row = probs + blockIdx.x * S;
  const int64_t i = blockIdx.x % S, valid = causal ? i + 1 : S;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < valid; j += blockDim.x) mx = fmaxf(mx, row[j]);
  mx = block_max(mx, shared);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < valid; j += blockDim.x) {
    const float e = expf(row[j] - mx);
    row[j] = e;
    sum += e;
  }
  sum = block_sum(sum, shared);
  for (int64_t j = threadIdx.x; j < S; j += blockDim.x) row[j] = j < valid ? row[j] / sum : 0.0f;
}

// dS = P * (dP - rowsum(dP * P)) in place over dP rows (kvh * S + i) of one (batch, group
// member); the matching P row is head kvh * group + member, p_head_stride floats apart.
__global__ void softmax_backward_rows_kernel(float* ds, const float* probs, int64_t S,
                                             int64_t p_head_stride) {
  __shared__ float shared[32];
  float* d = ds + blockIdx.x * S;
  const float* p = probs + (blockIdx.x / S) * p_head_stride + (blockIdx.x % S) * S;
  float dot = 0.0f;
  for (int64_t j = threadIdx.x; j < S; j += blockDim.x) dot += d[j] * p[j];
  dot = block_sum(dot, shared);
  for (int64_t j = threadIdx.x; j < S; j += blockDim.x) d[j] = p[j] * (d[j] - dot);
}

// A strided batch of row-major f32 matrices: base pointer, leading dimension, batch stride.
struct Mat {
  const float* p;
  int64_t ld, stride;
};

GemmArgs f32_gemm(int64_t batch, int64_t m, int64_t n, int64_t k, Mat a, bool ta, Mat b, bool tb,
                  float* c, int64_t ldc, int64_t stride_c, float alpha, float beta) {
  GemmArgs g;
  g.a = a.p;
  g.b = b.p;
  g.c = c;
  g.dtype = g.c_dtype = DType::f32;
  g.batch = batch;
  g.m = m;
  g.n = n;
  g.k = k;
  g.trans_a = ta;
  g.trans_b = tb;
  g.lda = a.ld;
  g.ldb = b.ld;
  g.ldc = ldc;
  g.stride_a = a.stride;
  g.stride_b = b.stride;
  g.stride_c = stride_c;
  g.alpha = alpha;
  g.beta = beta;
  return g;
}

}  // namespace

// GQA without copies: for batch b and group member r, the query heads kvh * group + r (kvh <
// Hkv) are one strided batch (head stride group * D) whose kv heads are kvh (stride D). Their
// probabilities are group * S * S floats apart.
void CudaBackend::attention_forward_f32(const Tensor& q, const Tensor& k, const Tensor& v,
                                        bool causal, Tensor& out, Tensor& probs) {
  const int64_t B = q.size(0), S = q.size(1), H = q.size(2), D = q.size(3), Hkv = k.size(2);
  const int64_t group = H / Hkv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const float *Q = q.data<float>(), *K = k.data<float>(), *V = v.data<float>();
  float *O = out.data<float>(), *P = probs.data<float>();
  for (int64_t b = 0; b < B; b++)
    for (int64_t r = 0; r < group; r++)
      gemm(f32_gemm(Hkv, S, S, D, {Q + (b * S * H + r) * D, H * D, group * D}, false,
                    {K + b * S * Hkv * D, Hkv * D, D}, true, P + (b * H + r) * S * S, S,
                    group * S * S, scale, 0.0f));
  softmax_rows_kernel<<<B * H * S, kThreads, 0, stream_>>>(P, S, causal);
  CUDA_CHECK_OP("attention softmax", q, probs);
  for (int64_t b = 0; b < B; b++)
    for (int64_t r = 0; r < group; r++)
      gemm(f32_gemm(Hkv, S, D, S, {P + (b * H + r) * S * S, S, group * S * S}, false,
                    {V + b * S * Hkv * D, Hkv * D, D}, false, O + (b * S * H + r) * D, H * D,
                    group * D, 1.0f, 0.0f));
}

// dV += P^T dO; dP = dO V^T; dS = P * (dP - rowsum(dP * P)); dQ = scale dS K; dK += scale dS^T Q.
// Group members run in order (beta 0 for the first), so the GQA sums are deterministic. Masked
// entries have P = 0, hence dS = 0: the backward needs no mask.
void CudaBackend::attention_backward_f32(const Tensor& q, const Tensor& k, const Tensor& v,
                                         const Tensor& probs, const Tensor& dout, Tensor& dq,
                                         Tensor& dk, Tensor& dv) {
  const int64_t B = q.size(0), S = q.size(1), H = q.size(2), D = q.size(3), Hkv = k.size(2);
  const int64_t group = H / Hkv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const float *Q = q.data<float>(), *K = k.data<float>(), *V = v.data<float>();
  const float *P = probs.data<float>(), *dO = dout.data<float>();
  Tensor ds_buffer = scratch({Hkv, S, S}, DType::f32);  // one (batch, member) at a time
  float* dS = ds_buffer.data<float>();
  for (int64_t b = 0; b < B; b++)
    for (int64_t r = 0; r < group; r++) {
      const Mat p{P + (b * H + r) * S * S, S, group * S * S};
      const Mat d_o{dO + (b * S * H + r) * D, H * D, group * D};
      const Mat qm{Q + (b * S * H + r) * D, H * D, group * D};
      const Mat km{K + b * S * Hkv * D, Hkv * D, D}, vm{V + b * S * Hkv * D, Hkv * D, D};
      const Mat ds{dS, S, S * S};
      const float acc = r == 0 ? 0.0f : 1.0f;
      gemm(f32_gemm(Hkv, S, D, S, p, true, d_o, false, dv.data<float>() + b * S * Hkv * D,
                    Hkv * D, D, 1.0f, acc));
      gemm(f32_gemm(Hkv, S, S, D, d_o, false, vm, true, dS, S, S * S, 1.0f, 0.0f));
      softmax_backward_rows_kernel<<<Hkv * S, kThreads, 0, stream_>>>(dS, p.p, S, p.stride);
      CUDA_CHECK_OP("attention softmax backward", probs, dout);
      gemm(f32_gemm(Hkv, S, D, S, ds, false, km, false, dq.data<float>() + (b * S * H + r) * D,
                    H * D, group * D, scale, 0.0f));
      gemm(f32_gemm(Hkv, S, D, S, ds, true, qm, false, dk.data<float>() + b * S * Hkv * D,
                    Hkv * D, D, scale, acc));
    }
}

// bf16 runs through the f32 core on widened copies: the (B, H, S, S) f32 probabilities dominate
// this path's memory anyway, and eager attention is the reference the tiled kernels are judged by.
void CudaBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                    bool causal, Tensor& out, Tensor& probs) {
  require_same_dtype("attention", q, k);
  require_same_dtype("attention", q, v);
  if (q.numel() == 0) return;
  activate();
  if (q.dtype() == DType::f32) return attention_forward_f32(q, k, v, causal, out, probs);
  LLM_CHECK(q.dtype() == DType::bf16, "attention on CUDA takes f32 or bf16; got " + q.str());
  Tensor qf = scratch(q.shape(), DType::f32), kf = scratch(k.shape(), DType::f32),
         vf = scratch(v.shape(), DType::f32), of = scratch(out.shape(), DType::f32);
  cast(q, qf);
  cast(k, kf);
  cast(v, vf);
  attention_forward_f32(qf, kf, vf, causal, of, probs);
  cast(of, out);
}

void CudaBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                     const Tensor& probs, const Tensor& dout, bool /*causal*/,
                                     Tensor& dq, Tensor& dk, Tensor& dv) {
  require_same_dtype("attention_backward", q, dout);
  if (q.numel() == 0) return;
  activate();
  if (q.dtype() == DType::f32) return attention_backward_f32(q, k, v, probs, dout, dq, dk, dv);
  LLM_CHECK(q.dtype() == DType::bf16,
            "attention_backward on CUDA takes f32 or bf16; got " + q.str());
  auto widen = [&](const Tensor& t) {
    Tensor f = scratch(t.shape(), DType::f32);
    cast(t, f);
    return f;
  };
  Tensor qf = widen(q), kf = widen(k), vf = widen(v), df = widen(dout);
  Tensor dqf = scratch(q.shape(), DType::f32), dkf = scratch(k.shape(), DType::f32),
         dvf = scratch(v.shape(), DType::f32);
  attention_backward_f32(qf, kf, vf, probs, df, dqf, dkf, dvf);
  cast(dqf, dq);
  cast(dkf, dk);
  cast(dvf, dv);
}

}  // namespace llm
