// defines: CudaBackend::flash_attention_forward/backward and mem_efficient_attention_forward/
// backward: one family of FlashAttention-2 kernels (CUDA cores, f32 tiles) whose mask options
// (causal, S2 groups, bias, document ids) are runtime fields, so flash, S2 and memory-efficient
// attention are the same code. bf16 calls at head_dim 64 and 128 without a bias go to the
// tensor-core kernels instead (cuda/attention/cuda_flash_attention_mma.cu), with the same mask.
#include <cmath>
#include <type_traits>

#include "cuda/attention/cuda_attention_tiles.cuh"
#include "cuda/attention/cuda_flash_attention_mma.h"
#include "cuda/attention/flash_attention_v3.h"
#include "cuda/attention/flash_variants.h"

namespace llm {

namespace {

using namespace tiles;

// Forward of one query tile of (b, h) (grid: query tiles, H, B). For each key tile in the band,
// the online softmax keeps each row's running max and sum in registers and rescales the output
// accumulator; the probabilities of a whole row never exist. lse = max + log(sum), +inf for a
// row that saw no key (its output is 0).
template <class T, int D>
__global__ void __launch_bounds__(kTileThreads)
    forward_kernel(Problem<T> a, T* out, float* lse) {
  extern __shared__ float smem[];
  float* q_s = smem;                // (64, D + 1)
  float* k_s = q_s + kM * ld<D>();  // (64, D + 1)
  float* v_s = k_s + kN * ld<D>();  // (64, D + 1)
  float* p_s = v_s + kN * ld<D>();  // (64, 65) unnormalised probabilities
  __shared__ KeySpan span_s[kM];
  const int64_t b = blockIdx.z, h = blockIdx.y, i0 = int64_t(blockIdx.x) * kM;
  const int64_t m = min(int64_t(kM), a.S - i0), kvh = h / a.heads_per_kv;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  if (threadIdx.x < kM) span_s[threadIdx.x] = a.mask.keys(b, h, i0 + threadIdx.x);
  load_tile<T, D>(q_s, a.q + a.q_row(b, i0, h, D), a.H * D, m);
  __syncthreads();
  const float* bias = a.mask.head_slice(a.mask.bias, b, h);
  const int64_t j_begin = span_s[0].lo / kN * kN, j_end = span_s[m - 1].hi;
  float acc[4][D / 16] = {}, row_max[4], row_sum[4];
#pragma unroll
  for (int i = 0; i < 4; i++) row_max[i] = -INFINITY, row_sum[i] = 0.0f;
  for (int64_t j0 = j_begin; j0 < j_end; j0 += kN) {
    const int64_t n = min(int64_t(kN), a.S - j0);
    load_tile<T, D>(k_s, a.k + a.kv_row(b, j0, kvh, D), a.Hkv * D, n);
    load_tile<T, D>(v_s, a.v + a.kv_row(b, j0, kvh, D), a.Hkv * D, n);
    __syncthreads();
    float s[4][4];
    tile_abt<D>(q_s, k_s, s);
    mask_scores(a.mask, bias, a.scale, i0, j0, span_s, s);
#pragma unroll
    for (int i = 0; i < 4; i++) {
      float mx = row_max[i];
#pragma unroll
      for (int j = 0; j < 4; j++) mx = fmaxf(mx, s[i][j]);
      mx = row_max16(mx);
      // A row masked so far keeps max -inf; subtracting 0 instead gives exp(-inf) = 0, not NaN.
      const float base = mx == -INFINITY ? 0.0f : mx;
      const float rescale = expf(row_max[i] - base);
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 4; j++) {
        s[i][j] = expf(s[i][j] - base);
        sum += s[i][j];
        p_s[(4 * ty + i) * kPLd + tx + 16 * j] = s[i][j];
      }
      row_sum[i] = row_sum[i] * rescale + row_sum16(sum);
      row_max[i] = mx;
#pragma unroll
      for (int c = 0; c < D / 16; c++) acc[i][c] *= rescale;
    }
    __syncthreads();
    tile_ab<D>(p_s, v_s, acc);
    __syncthreads();  // k_s, v_s and p_s are rewritten by the next key tile
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int r = 4 * ty + i;
    if (r >= m) continue;
    const bool sees_any = row_sum[i] > 0.0f;
    const float inv = sees_any ? 1.0f / row_sum[i] : 0.0f;
    T* o = out + a.q_row(b, i0 + r, h, D);
#pragma unroll
    for (int c = 0; c < D / 16; c++) o[tx + 16 * c] = from_f32<T>(acc[i][c] * inv);
    // +inf makes the backward's exp(s - lse) 0 on a row that saw nothing.
    if (tx == 0)
      lse[(b * a.H + h) * a.S + i0 + r] = sees_any ? row_max[i] + logf(row_sum[i]) : INFINITY;
  }
}

// delta[b, h, i] = rowsum(dO * O), the softmax term of the backward. One warp per (b, i, h).
template <class T>
__global__ void delta_kernel(const T* out, const T* dout, float* delta, int64_t rows, int64_t S,
                             int64_t H, int64_t D) {
  // row = (b * S + i) * H + h, the layout of out and dout.
  const int64_t row = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32;
  if (row >= rows) return;
  const int lane = threadIdx.x % 32;
  float acc = 0.0f;
  for (int64_t d = lane; d < D; d += 32)
    acc += to_f32(out[row * D + d]) * to_f32(dout[row * D + d]);
  for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  const int64_t b = row / (S * H), i = row / H % S, h = row % H;
  if (lane == 0) delta[(b * H + h) * S + i] = acc;
}

// Per-row data of one query tile in shared memory: key spans, lse (+inf past the sequence, so
// P = 0 there) and delta.
struct RowData {
  KeySpan span[kM];
  float lse[kM], delta[kM];
};

template <class T>
__device__ void load_row_data(const Problem<T>& a, RowData& rd, const float* lse,
                              const float* delta, int64_t b, int64_t h, int64_t i0, int64_t m) {
  const int r = threadIdx.x;
  if (r >= kM) return;
  rd.span[r] = a.mask.keys(b, h, i0 + r);
  rd.lse[r] = r < m ? lse[(b * a.H + h) * a.S + i0 + r] : INFINITY;
  rd.delta[r] = r < m ? delta[(b * a.H + h) * a.S + i0 + r] : 0.0f;
}

// P = exp(scores - lse) and dS = P * (dO V^T - delta) of one (query tile, key tile), in registers.
template <int D>
__device__ void probs_and_dscores(const MaskView& mask, const float* bias, float scale, int64_t i0,
                                  int64_t j0, const RowData& rd, const float* q_s,
                                  const float* k_s, const float* do_s, const float* v_s,
                                  float p[4][4], float ds[4][4]) {
  const int ty = threadIdx.x / 16;
  tile_abt<D>(q_s, k_s, p);
  mask_scores(mask, bias, scale, i0, j0, rd.span, p);
  tile_abt<D>(do_s, v_s, ds);
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int r = 4 * ty + i;
      p[i][j] = expf(p[i][j] - rd.lse[r]);
      ds[i][j] = p[i][j] * (ds[i][j] - rd.delta[r]);
    }
}

// dK and dV of one key tile of kv head kvh (grid: key tiles, Hkv, B): FlashAttention-2's outer
// loop. They accumulate in registers over every query head of the GQA group and every query tile
// that sees the key tile, in a fixed order; P is recomputed from lse tile by tile:
//   dV += P^T dO, dK += scale dS^T Q.
template <class T, int D>
__global__ void __launch_bounds__(kTileThreads)
    backward_dkdv_kernel(Problem<T> a, const T* dout, const float* lse, const float* delta, T* dk,
                         T* dv) {
  extern __shared__ float smem[];
  float* k_s = smem;
  float* v_s = k_s + kN * ld<D>();
  float* q_s = v_s + kN * ld<D>();
  float* do_s = q_s + kM * ld<D>();
  float* p_s = do_s + kM * ld<D>();  // P, then dS
  __shared__ RowData rd;
  const int64_t b = blockIdx.z, kvh = blockIdx.y, j0 = int64_t(blockIdx.x) * kN;
  const int64_t n = min(int64_t(kN), a.S - j0);
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  load_tile<T, D>(k_s, a.k + a.kv_row(b, j0, kvh, D), a.Hkv * D, n);
  load_tile<T, D>(v_s, a.v + a.kv_row(b, j0, kvh, D), a.Hkv * D, n);
  float dk_acc[4][D / 16] = {}, dv_acc[4][D / 16] = {};
  for (int64_t h = kvh * a.heads_per_kv; h < (kvh + 1) * a.heads_per_kv; h++) {
    const float* bias = a.mask.head_slice(a.mask.bias, b, h);
    for (int64_t i0 = 0; i0 < a.S; i0 += kM) {
      const int64_t m = min(int64_t(kM), a.S - i0);
      // The same decision in every thread, so the barriers below stay uniform.
      if (!a.mask.tiles_meet(b, h, i0, m, j0, n)) continue;
      __syncthreads();  // the previous query tile's readers are done with q_s, do_s, p_s, rd
      load_row_data(a, rd, lse, delta, b, h, i0, m);
      load_tile<T, D>(q_s, a.q + a.q_row(b, i0, h, D), a.H * D, m);
      load_tile<T, D>(do_s, dout + a.q_row(b, i0, h, D), a.H * D, m);
      __syncthreads();
      float p[4][4], ds[4][4];
      probs_and_dscores<D>(a.mask, bias, a.scale, i0, j0, rd, q_s, k_s, do_s, v_s, p, ds);
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) p_s[(4 * ty + i) * kPLd + tx + 16 * j] = p[i][j];
      __syncthreads();
      tile_atb<D>(p_s, do_s, dv_acc);
      __syncthreads();
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) p_s[(4 * ty + i) * kPLd + tx + 16 * j] = ds[i][j];
      __syncthreads();
      tile_atb<D>(p_s, q_s, dk_acc);
    }
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int c = 4 * ty + i;  // key row of the tile
    if (c >= n) continue;
    const int64_t row = a.kv_row(b, j0 + c, kvh, D);
#pragma unroll
    for (int d = 0; d < D / 16; d++) {
      dk[row + tx + 16 * d] = from_f32<T>(a.scale * dk_acc[i][d]);
      dv[row + tx + 16 * d] = from_f32<T>(dv_acc[i][d]);
    }
  }
}

// dQ of one query tile (grid: query tiles, then (h, b) tasks): a second pass over the key tiles
// in order, dQ += scale dS K in registers, written once, so it needs no atomics. With a bias
// gradient, dbias += dS element by element; a bias broadcast over heads (batches) makes one
// block loop over all of them (merge_h, merge_b), so each dbias element has one owner adding in
// a fixed order, as the CPU reference does.
template <class T, int D>
__global__ void __launch_bounds__(kTileThreads)
    backward_dq_kernel(Problem<T> a, const T* dout, const float* lse, const float* delta, T* dq,
                       float* dbias, int64_t B, bool merge_b, bool merge_h) {
  extern __shared__ float smem[];
  float* q_s = smem;
  float* do_s = q_s + kM * ld<D>();
  float* k_s = do_s + kM * ld<D>();
  float* v_s = k_s + kN * ld<D>();
  float* p_s = v_s + kN * ld<D>();  // dS
  __shared__ RowData rd;
  const int64_t i0 = int64_t(blockIdx.x) * kM, m = min(int64_t(kM), a.S - i0);
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t b_begin = merge_b ? 0 : blockIdx.z, b_end = merge_b ? B : b_begin + 1;
  const int64_t h_begin = merge_h ? 0 : blockIdx.y, h_end = merge_h ? a.H : h_begin + 1;
  for (int64_t b = b_begin; b < b_end; b++)
    for (int64_t h = h_begin; h < h_end; h++) {
      const int64_t kvh = h / a.heads_per_kv;
      const float* bias = a.mask.head_slice(a.mask.bias, b, h);
      float* dbias_head = a.mask.head_slice(dbias, b, h);
      __syncthreads();  // the previous (b, h) is done with every shared buffer
      load_row_data(a, rd, lse, delta, b, h, i0, m);
      load_tile<T, D>(q_s, a.q + a.q_row(b, i0, h, D), a.H * D, m);
      load_tile<T, D>(do_s, dout + a.q_row(b, i0, h, D), a.H * D, m);
      __syncthreads();
      const int64_t j_begin = rd.span[0].lo / kN * kN, j_end = rd.span[m - 1].hi;
      float dq_acc[4][D / 16] = {};
      for (int64_t j0 = j_begin; j0 < j_end; j0 += kN) {
        const int64_t n = min(int64_t(kN), a.S - j0);
        __syncthreads();  // the previous key tile's readers are done with k_s, v_s, p_s
        load_tile<T, D>(k_s, a.k + a.kv_row(b, j0, kvh, D), a.Hkv * D, n);
        load_tile<T, D>(v_s, a.v + a.kv_row(b, j0, kvh, D), a.Hkv * D, n);
        __syncthreads();
        float p[4][4], ds[4][4];
        probs_and_dscores<D>(a.mask, bias, a.scale, i0, j0, rd, q_s, k_s, do_s, v_s, p, ds);
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
          for (int j = 0; j < 4; j++) {
            const int r = 4 * ty + i, c = tx + 16 * j;
            p_s[r * kPLd + c] = ds[i][j];
            if (dbias_head && r < m && c < n) dbias_head[(i0 + r) * a.S + j0 + c] += ds[i][j];
          }
        __syncthreads();
        tile_ab<D>(p_s, k_s, dq_acc);
      }
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const int r = 4 * ty + i;
        if (r >= m) continue;
        T* row = dq + a.q_row(b, i0 + r, h, D);
#pragma unroll
        for (int d = 0; d < D / 16; d++) row[tx + 16 * d] = from_f32<T>(a.scale * dq_acc[i][d]);
      }
    }
}

constexpr size_t forward_smem(int D) { return (3 * size_t(64) * (D + 1) + 64 * kPLd) * 4; }
constexpr size_t backward_smem(int D) { return (4 * size_t(64) * (D + 1) + 64 * kPLd) * 4; }

// The kernels' view of the mask for q (B, S, H, D), once its tensors are checked to be where and
// what the kernels read.
MaskView make_mask(const Tensor& q, const AttentionMask& mask) {
  if (mask.doc_ids.defined())
    LLM_CHECK(mask.doc_ids.device() == q.device() && mask.doc_ids.dtype() == DType::i32,
              "tiled attention doc_ids must be i32 on " + q.device().str() + ", got " +
                  mask.doc_ids.str());
  if (mask.bias.defined()) {
    const Tensor& bias = mask.bias;
    LLM_CHECK(bias.dtype() == DType::f32 && bias.is_contiguous() && bias.device() == q.device(),
              "tiled attention bias must be contiguous f32 on " + q.device().str() + ", got " +
                  bias.str());
  }
  return mask_view(mask, q.size(1), q.size(2));
}

// Calls f(T{}, std::integral_constant<int, D>{}) for the tensors' dtype and head_dim; the
// kernels exist for head_dim 32 (the tiny preset), 64 and 128 (Llama 3).
template <class F>
void dispatch_tiled(const char* op, const Tensor& q, F&& f) {
  dispatch_float(op, q, [&](auto tag) {
    switch (q.size(3)) {
      case 32: f(tag, std::integral_constant<int, 32>{}); break;
      case 64: f(tag, std::integral_constant<int, 64>{}); break;
      case 128: f(tag, std::integral_constant<int, 128>{}); break;
      default:
        throw std::runtime_error(std::string(op) +
                                 " on CUDA supports head_dim 32, 64 and 128; got " + q.str());
    }
  });
}

void check_tiled_inputs(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
  require_same_dtype(op, q, k);
  require_same_dtype(op, q, v);
  LLM_CHECK(q.dim() == 4 && k.dim() == 4 && k.size(2) > 0 && q.size(2) % k.size(2) == 0,
            std::string(op) + ": q " + q.str() + ", k " + k.str());
}

// The shared implementation behind the four entry points (the mask decides what each computes).
struct Tiled {
  CudaBackend& be;
  cudaStream_t stream;

  void forward(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
               const AttentionMask& mask, Tensor& out, Tensor& lse) {
    check_tiled_inputs(op, q, k, v);
    const int64_t B = q.size(0), S = q.size(1), H = q.size(2);
    if (B * S * H == 0) return;
    if (mma_attention_takes(mask, {q, k, v, out})) {
      make_mask(q, mask);  // only its checks: the variant takes the mask itself
      // v4, v3 or v2 as chosen on this device (flash_variants.h), unless none passed there.
      if (flash_tensor_core_forward(be, q, k, v, mask, out, lse)) {
        CUDA_CHECK_OP(op, q, k, v, out, lse);
        return;
      }
    }
    dispatch_tiled(op, q, [&](auto tag, auto dim) {
      using T = decltype(tag);
      constexpr int D = decltype(dim)::value;
      const dim3 grid(static_cast<unsigned>((S + kM - 1) / kM), static_cast<unsigned>(H),
                      static_cast<unsigned>(B));
      allow_smem(forward_kernel<T, D>, forward_smem(D));
      forward_kernel<T, D><<<grid, kTileThreads, forward_smem(D), stream>>>(
          make_problem<T>(q, k, v, make_mask(q, mask)), out.data<T>(), lse.data<float>());
    });
    CUDA_CHECK_OP(op, q, k, v, out, lse);
  }

  void backward(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                const Tensor& out, const Tensor& lse, const Tensor& dout,
                const AttentionMask& mask, Tensor& dq, Tensor& dk, Tensor& dv, Tensor* dbias) {
    check_tiled_inputs(op, q, k, v);
    require_same_dtype(op, q, dout);
    const int64_t B = q.size(0), S = q.size(1), H = q.size(2), Hkv = k.size(2), D = q.size(3);
    if (B * S * H == 0) return;
    Tensor delta = Tensor::empty({B, H, S}, DType::f32, dq.device());
    if (dbias) be.fill(*dbias, 0.0f);
    const bool merge_b = dbias && dbias->size(0) == 1, merge_h = dbias && dbias->size(1) == 1;
    const bool tensor_cores = mma_attention_takes(mask, {q, k, v, dout, dq, dk, dv});
    dispatch_tiled(op, q, [&](auto tag, auto dim) {
      using T = decltype(tag);
      constexpr int Dc = decltype(dim)::value;
      const int64_t rows = B * S * H;
      delta_kernel<T><<<static_cast<unsigned>((rows * 32 + 255) / 256), 256, 0, stream>>>(
          out.data<T>(), dout.data<T>(), delta.data<float>(), rows, S, H, D);
      // v4, v3 or v2 as chosen on this device (flash_variants.h), unless none passed there.
      if (tensor_cores &&
          flash_tensor_core_backward(be, q, k, v, dout, lse, delta, mask, dq, dk, dv))
        return;
      const Problem<T> a = make_problem<T>(q, k, v, make_mask(q, mask));
      const unsigned tiles = static_cast<unsigned>((S + kM - 1) / kM);
      allow_smem(backward_dkdv_kernel<T, Dc>, backward_smem(Dc));
      const dim3 dkdv_grid(tiles, static_cast<unsigned>(Hkv), static_cast<unsigned>(B));
      backward_dkdv_kernel<T, Dc><<<dkdv_grid, kTileThreads, backward_smem(Dc), stream>>>(
          a, dout.data<T>(), lse.data<float>(), delta.data<float>(), dk.data<T>(), dv.data<T>());
      const dim3 dq_grid(tiles, merge_h ? 1u : static_cast<unsigned>(H),
                         merge_b ? 1u : static_cast<unsigned>(B));
      allow_smem(backward_dq_kernel<T, Dc>, backward_smem(Dc));
      backward_dq_kernel<T, Dc><<<dq_grid, kTileThreads, backward_smem(Dc), stream>>>(
          a, dout.data<T>(), lse.data<float>(), delta.data<float>(), dq.data<T>(),
          dbias ? dbias->data<float>() : nullptr, B, merge_b, merge_h);
    });
    CUDA_CHECK_OP(op, q, k, v, out, lse, dout, dq, dk, dv);
  }
};
}  // namespace

int64_t CudaBackend::tiled_attention_head_dim(int64_t D) const {
  for (const int64_t kernel_dim : {32, 64, 128})  // dispatch_tiled's
    if (D <= kernel_dim) return kernel_dim;
  return D;  // past 128: dispatch_tiled names the head_dims there are
}

void CudaBackend::flash_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                          const AttentionMask& mask, Tensor& out, Tensor& lse) {
  activate();
  Tiled{*this, stream_}.forward("flash_attention", q, k, v, mask, out, lse);
}

void CudaBackend::flash_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                           const Tensor& out, const Tensor& lse,
                                           const Tensor& dout, const AttentionMask& mask,
                                           Tensor& dq, Tensor& dk, Tensor& dv) {
  activate();
  Tiled{*this, stream_}.backward("flash_attention_backward", q, k, v, out, lse, dout, mask, dq,
                                 dk, dv, nullptr);
}

void CudaBackend::mem_efficient_attention_forward(const Tensor& q, const Tensor& k,
                                                  const Tensor& v, const AttentionMask& mask,
                                                  Tensor& out, Tensor& lse) {
  activate();
  // The key spans rely on documents being contiguous runs.
  if (mask.doc_ids.defined()) check_doc_ids(mask.doc_ids, q.size(1));
  Tiled{*this, stream_}.forward("mem_efficient_attention", q, k, v, mask, out, lse);
}

void CudaBackend::mem_efficient_attention_backward(const Tensor& q, const Tensor& k,
                                                   const Tensor& v, const Tensor& out,
                                                   const Tensor& lse, const Tensor& dout,
                                                   const AttentionMask& mask, Tensor& dq,
                                                   Tensor& dk, Tensor& dv, Tensor& dbias) {
  activate();
  Tiled{*this, stream_}.backward("mem_efficient_attention_backward", q, k, v, out, lse, dout,
                                 mask, dq, dk, dv, dbias.defined() ? &dbias : nullptr);
}

}  // namespace llm
