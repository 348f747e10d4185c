// defines: mma_attention_takes, mma_attention_forward, mma_attention_backward: attention kernels
// v2 (README, "Attention kernel variants"), FlashAttention-2 on the tensor cores for bf16 at
// head_dim 64 and 128 with key-span masks (causal, S2 groups, document ids). Every product is
// mma.sync m16n8k16 (bf16 in, f32 accumulate) on fragments laid out as mma_fragments.cuh says;
// masks, softmax and its statistics stay f32 in registers.
//
// A block is 4 warps, and each warp owns 16 rows of the block's 64-row tile (query rows in the
// forward and the dQ kernel, key rows in the dK/dV kernel) and computes them alone: warps share
// only the tiles in shared memory. Every product is A B^T with both operands stored k-contiguous
// (mma_fragments.cuh): Q K^T, dO V^T, K Q^T and V dO^T read the tiles as loaded; P V, dS K,
// P^T dO and dS^T Q need V, K, dO and Q transposed, which the loads write alongside.
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "cuda/attention/cuda_flash_attention_mma.h"
#include "cuda/attention/mma_fragments.cuh"
#include "cuda/attention/mma_tiles.cuh"

namespace llm {

namespace {

using namespace tiles;
using namespace mma;

constexpr int kWarps = 4, kBlockThreads = 32 * kWarps;
constexpr int kRows = 16 * kWarps;  // a block's tile: 64 query rows, or 64 keys
static_assert(kRows == kM && kRows == kN, "the block tile is the tiled attention's 64 x 64");
// bf16 added to each shared-memory row. A fragment load has lane (group g, thread t) read the
// word at row g, column 2 t of its tile; with rows of C + 8 bf16 = C / 2 + 4 words (C a multiple
// of 64) that word is in bank 4 g + t (mod 32), so a warp's 32 loads hit 32 different banks.
constexpr int kPad = 8;

// Rows [0, rows) of a head matrix (rows `stride` elements apart) into the R x C tile dst (row
// stride C + kPad); the rows after them are zero, so an edge tile adds nothing to the products.
// 16 bytes per thread and step, a row's pieces in neighbouring threads.
template <int R, int C>
__device__ void load_tile(bf16* dst, const bf16* src, int64_t stride, int64_t rows) {
  constexpr int kPieces = C / 8;
  for (int e = threadIdx.x; e < R * kPieces; e += kBlockThreads) {
    const int r = e / kPieces, c = e % kPieces * 8;
    uint4 x = make_uint4(0, 0, 0, 0);
    if (r < rows) x = *reinterpret_cast<const uint4*>(src + r * stride + c);
    *reinterpret_cast<uint4*>(dst + r * (C + kPad) + c) = x;
  }
}

// The same rows transposed: dst is C x R with row stride R + kPad, dst[c][r] = src[r][c].
// Neighbouring threads take neighbouring rows, so their 2-byte stores spread over the banks.
template <int R, int C>
__device__ void load_tile_transposed(bf16* dst, const bf16* src, int64_t stride, int64_t rows) {
  for (int e = threadIdx.x; e < R * (C / 8); e += kBlockThreads) {
    const int r = e % R, c = e / R * 8;
    uint4 x = make_uint4(0, 0, 0, 0);
    if (r < rows) x = *reinterpret_cast<const uint4*>(src + r * stride + c);
    const bf16* piece = reinterpret_cast<const bf16*>(&x);
#pragma unroll
    for (int u = 0; u < 8; u++) dst[(c + u) * (R + kPad) + r] = piece[u];
  }
}

// acc (16 x 8 NT) += A B^T for one 16-wide k-slice: `a` is the slice's A fragment, bt points at
// column 0 of the slice in B^T's 8 NT rows (row stride ldb, shared memory).
template <int NT>
__device__ __forceinline__ void mma_slice(float (&acc)[NT][4], const uint32_t a[4], const bf16* bt,
                                          int ldb) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int t = 0; t < NT; t++) {
    uint32_t b[2];
    load_b(bt + 8 * t * ldb, ldb, lane, b);
    mma_16x8x16(acc[t], a, b);
  }
}

// acc (16 x 8 NT) += A B^T over 16 KS columns, A's 16 rows (row stride lda) and B^T's rows in
// shared memory.
template <int KS, int NT>
__device__ __forceinline__ void mma_tiles(float (&acc)[NT][4], const bf16* a, int lda,
                                          const bf16* bt, int ldb) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int kk = 0; kk < KS; kk++) {
    uint32_t af[4];
    load_a(a + 16 * kk, lda, lane, af);
    mma_slice(acc, af, bt + 16 * kk, ldb);
  }
}

// acc (16 x 8 NT) += X B^T where X (16 x 16 KS) is an earlier product still in C fragments
// (x[2 KS][4]), used as the A operand in place (c_to_a). The backward's X (P, dS) goes in as
// the bf16 pair hi + lo: rounded to bf16 alone, dS and P cost the gradients more than a
// bf16 output rounding does (a CPU simulation put dK and dQ at 2-3x eager's error), which is
// the bar the tests set. The forward's P rounds to bf16, as FlashAttention's does.
template <bool kSplit, int KS, int NT>
__device__ __forceinline__ void mma_from_c(float (&acc)[NT][4], const float (&x)[2 * KS][4],
                                           const bf16* bt, int ldb) {
#pragma unroll
  for (int kk = 0; kk < KS; kk++) {
    uint32_t hi[4], lo[4];
    if constexpr (kSplit) {
      c_to_a_split(x, kk, hi, lo);
      mma_slice(acc, lo, bt + 16 * kk, ldb);
    } else {
      c_to_a(x, kk, hi);
    }
    mma_slice(acc, hi, bt + 16 * kk, ldb);
  }
}

// Forward of one query tile of (b, h) (grid: query tiles, H, B). Each warp keeps its 16 rows'
// Q fragments, output accumulator, running max and sum in registers; per key tile it computes
// S = Q K^T, masks and scales it, updates the online softmax on the C fragments (a row's 16
// values of a lane, then the 4 lanes of its quad), and adds P V with P taken straight from the
// score registers. lse = max + log(sum), +inf for a row that saw no key (its output is 0).
template <int D>
__global__ void __launch_bounds__(kBlockThreads)
    forward_kernel(Problem<bf16> p, bf16* out, float* lse) {
  constexpr int LD = D + kPad, LDV = kN + kPad;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* q_s = reinterpret_cast<bf16*>(smem);  // (64, LD)
  bf16* k_s = q_s + kRows * LD;               // (64, LD)
  bf16* vt_s = k_s + kN * LD;                 // (D, LDV): V transposed, the B^T of P V
  __shared__ QueryRows<kRows> rows;
  const int warp = threadIdx.x / 32;
  const int64_t b = blockIdx.z, h = blockIdx.y, i0 = int64_t(blockIdx.x) * kRows;
  const int64_t m = min(int64_t(kRows), p.S - i0), kvh = h / p.heads_per_kv;
  load_query_rows(p, rows, nullptr, nullptr, b, h, i0, m);
  load_tile<kRows, D>(q_s, p.q + p.q_row(b, i0, h, D), p.H * D, m);
  __syncthreads();
  uint32_t qf[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++)
    load_a(q_s + 16 * warp * LD + 16 * kk, LD, threadIdx.x % 32, qf[kk]);
  // The lane's two rows: C elements 0, 1 are row 16 warp + c_row(0), elements 2, 3 eight below.
  KeySpan span[2];
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};
#pragma unroll
  for (int x = 0; x < 2; x++) span[x] = rows.span[16 * warp + c_row(2 * x)];
  float o[D / 8][4] = {};
  const int64_t j_end = rows.span[m - 1].hi;
  for (int64_t j0 = first_key_tile(rows); j0 < j_end; j0 += kN) {
    const int64_t n = min(int64_t(kN), p.S - j0);
    __syncthreads();  // every warp is done with the previous key tile
    load_tile<kN, D>(k_s, p.k + p.kv_row(b, j0, kvh, D), p.Hkv * D, n);
    load_tile_transposed<kN, D>(vt_s, p.v + p.kv_row(b, j0, kvh, D), p.Hkv * D, n);
    __syncthreads();
    float s[kN / 8][4] = {};
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) mma_slice(s, qf[kk], k_s + 16 * kk, LD);
#pragma unroll
    for (int t = 0; t < kN / 8; t++)
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const int64_t key = j0 + c_col(t, i);
        s[t][i] = span[i / 2].contains(key) ? s[t][i] * p.scale : -INFINITY;
      }
#pragma unroll
    for (int x = 0; x < 2; x++) {  // the lane's row x: elements 2 x and 2 x + 1 of every n-tile
      float mx = row_max[x];
#pragma unroll
      for (int t = 0; t < kN / 8; t++) mx = fmaxf(mx, fmaxf(s[t][2 * x], s[t][2 * x + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));  // the row's other three lanes
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      // A row masked so far keeps max -inf; subtracting 0 instead gives exp(-inf) = 0, not NaN.
      const float base = mx == -INFINITY ? 0.0f : mx;
      const float rescale = expf(row_max[x] - base);
      float sum = 0.0f;
#pragma unroll
      for (int t = 0; t < kN / 8; t++)
#pragma unroll
        for (int e = 2 * x; e < 2 * x + 2; e++) {
          s[t][e] = expf(s[t][e] - base);
          sum += s[t][e];
        }
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      row_sum[x] = row_sum[x] * rescale + sum;
      row_max[x] = mx;
#pragma unroll
      for (int t = 0; t < D / 8; t++) o[t][2 * x] *= rescale, o[t][2 * x + 1] *= rescale;
    }
    mma_from_c<false, kN / 16>(o, s, vt_s, LDV);
  }
#pragma unroll
  for (int x = 0; x < 2; x++) {
    const int r = 16 * warp + c_row(2 * x);
    if (r >= m) continue;
    const bool sees_any = row_sum[x] > 0.0f;
    const float inv = sees_any ? 1.0f / row_sum[x] : 0.0f;
    bf16* row = out + p.q_row(b, i0 + r, h, D);
#pragma unroll
    for (int t = 0; t < D / 8; t++)
      *reinterpret_cast<uint32_t*>(row + c_col(t, 2 * x)) =
          pack_bf16(o[t][2 * x] * inv, o[t][2 * x + 1] * inv);
    // +inf makes the backward's exp(s - lse) 0 on a row that saw nothing.
    if (thread_in_group(threadIdx.x % 32) == 0)
      lse[(b * p.H + h) * p.S + i0 + r] = sees_any ? row_max[x] + logf(row_sum[x]) : INFINITY;
  }
}

// dK and dV of one key tile of kv head kvh (grid: key tiles, Hkv, B): FlashAttention-2's outer
// loop. Each warp owns 16 keys and works on transposed scores (keys x queries), so P^T and dS^T
// are C fragments whose rows are its keys and feed dV += P^T dO and dK += dS^T Q directly. The
// sums run over every query head of the GQA group and every query tile that sees the key tile,
// in a fixed order, in registers.
template <int D>
__global__ void __launch_bounds__(kBlockThreads)
    backward_dkdv_kernel(Problem<bf16> p, const bf16* dout, const float* lse, const float* delta,
                         bf16* dk, bf16* dv) {
  constexpr int QT = dkdv_query_rows(D), LD = D + kPad, LDT = QT + kPad;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* k_s = reinterpret_cast<bf16*>(smem);  // (64, LD) the block's keys
  bf16* v_s = k_s + kN * LD;                  // (64, LD)
  bf16* q_s = v_s + kN * LD;                  // (QT, LD) a query tile
  bf16* do_s = q_s + QT * LD;                 // (QT, LD)
  bf16* qt_s = do_s + QT * LD;                // (D, LDT) Q transposed, the B^T of dS^T Q
  bf16* dot_s = qt_s + D * LDT;               // (D, LDT) dO transposed, the B^T of P^T dO
  __shared__ QueryRows<QT> rows;
  const int warp = threadIdx.x / 32;
  const int64_t b = blockIdx.z, kvh = blockIdx.y, j0 = int64_t(blockIdx.x) * kN;
  const int64_t n = min(int64_t(kN), p.S - j0);
  load_tile<kN, D>(k_s, p.k + p.kv_row(b, j0, kvh, D), p.Hkv * D, n);
  load_tile<kN, D>(v_s, p.v + p.kv_row(b, j0, kvh, D), p.Hkv * D, n);
  float dk_acc[D / 8][4] = {}, dv_acc[D / 8][4] = {};
  for (int64_t h = kvh * p.heads_per_kv; h < (kvh + 1) * p.heads_per_kv; h++)
    for (int64_t i0 = 0; i0 < p.S; i0 += QT) {
      const int64_t m = min(int64_t(QT), p.S - i0);
      // The same decision in every thread, so the barriers below stay uniform.
      if (!p.mask.tiles_meet(b, h, i0, m, j0, n)) continue;
      __syncthreads();  // every warp is done with the previous query tile
      load_query_rows(p, rows, lse, delta, b, h, i0, m);
      const bf16* q = p.q + p.q_row(b, i0, h, D);
      const bf16* d_o = dout + p.q_row(b, i0, h, D);
      load_tile<QT, D>(q_s, q, p.H * D, m);
      load_tile<QT, D>(do_s, d_o, p.H * D, m);
      load_tile_transposed<QT, D>(qt_s, q, p.H * D, m);
      load_tile_transposed<QT, D>(dot_s, d_o, p.H * D, m);
      __syncthreads();
      float pt[QT / 8][4] = {}, dst[QT / 8][4] = {};  // P^T, then dS^T: 16 keys x QT queries
      mma_tiles<D / 16>(pt, k_s + 16 * warp * LD, LD, q_s, LD);    // S^T = K Q^T
      mma_tiles<D / 16>(dst, v_s + 16 * warp * LD, LD, do_s, LD);  // dP^T = V dO^T
#pragma unroll
      for (int t = 0; t < QT / 8; t++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
          const int64_t key = j0 + 16 * warp + c_row(i);
          const int r = c_col(t, i);  // the query row in the tile
          const bool seen = rows.span[r].contains(key);
          const float prob = seen ? expf(pt[t][i] * p.scale - rows.lse[r]) : 0.0f;
          pt[t][i] = prob;
          dst[t][i] = prob * (dst[t][i] - rows.delta[r]);
        }
      mma_from_c<true, QT / 16>(dv_acc, pt, dot_s, LDT);  // dV += P^T dO
      mma_from_c<true, QT / 16>(dk_acc, dst, qt_s, LDT);  // dK += dS^T Q (scaled at the end)
    }
  store_warp_rows<D>(dk_acc, p.scale, n, [&](int c) { return dk + p.kv_row(b, j0 + c, kvh, D); });
  store_warp_rows<D>(dv_acc, 1.0f, n, [&](int c) { return dv + p.kv_row(b, j0 + c, kvh, D); });
}

// dQ of one query tile of (b, h) (grid: query tiles, H, B): a second pass over the key tiles in
// order, dQ += dS K in registers and written once, so dQ needs no atomics and is deterministic.
template <int D>
__global__ void __launch_bounds__(kBlockThreads)
    backward_dq_kernel(Problem<bf16> p, const bf16* dout, const float* lse, const float* delta,
                       bf16* dq) {
  constexpr int LD = D + kPad, LDT = kN + kPad;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* q_s = reinterpret_cast<bf16*>(smem);  // (64, LD)
  bf16* do_s = q_s + kRows * LD;              // (64, LD)
  bf16* k_s = do_s + kRows * LD;              // (64, LD)
  bf16* v_s = k_s + kN * LD;                  // (64, LD)
  bf16* kt_s = v_s + kN * LD;                 // (D, LDT) K transposed, the B^T of dS K
  __shared__ QueryRows<kRows> rows;
  const int warp = threadIdx.x / 32;
  const int64_t b = blockIdx.z, h = blockIdx.y, i0 = int64_t(blockIdx.x) * kRows;
  const int64_t m = min(int64_t(kRows), p.S - i0), kvh = h / p.heads_per_kv;
  load_query_rows(p, rows, lse, delta, b, h, i0, m);
  load_tile<kRows, D>(q_s, p.q + p.q_row(b, i0, h, D), p.H * D, m);
  load_tile<kRows, D>(do_s, dout + p.q_row(b, i0, h, D), p.H * D, m);
  __syncthreads();
  float dq_acc[D / 8][4] = {};
  const int64_t j_end = rows.span[m - 1].hi;
  for (int64_t j0 = first_key_tile(rows); j0 < j_end; j0 += kN) {
    const int64_t n = min(int64_t(kN), p.S - j0);
    __syncthreads();  // every warp is done with the previous key tile
    load_tile<kN, D>(k_s, p.k + p.kv_row(b, j0, kvh, D), p.Hkv * D, n);
    load_tile<kN, D>(v_s, p.v + p.kv_row(b, j0, kvh, D), p.Hkv * D, n);
    load_tile_transposed<kN, D>(kt_s, p.k + p.kv_row(b, j0, kvh, D), p.Hkv * D, n);
    __syncthreads();
    float s[kN / 8][4] = {}, ds[kN / 8][4] = {};  // P, then dS: 16 queries x 64 keys
    mma_tiles<D / 16>(s, q_s + 16 * warp * LD, LD, k_s, LD);    // S = Q K^T
    mma_tiles<D / 16>(ds, do_s + 16 * warp * LD, LD, v_s, LD);  // dP = dO V^T
#pragma unroll
    for (int t = 0; t < kN / 8; t++)
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const int r = 16 * warp + c_row(i);
        const int64_t key = j0 + c_col(t, i);
        const bool seen = rows.span[r].contains(key);
        const float prob = seen ? expf(s[t][i] * p.scale - rows.lse[r]) : 0.0f;
        ds[t][i] = prob * (ds[t][i] - rows.delta[r]);
      }
    mma_from_c<true, kN / 16>(dq_acc, ds, kt_s, LDT);
  }
  store_warp_rows<D>(dq_acc, p.scale, m, [&](int r) { return dq + p.q_row(b, i0 + r, h, D); });
}

constexpr size_t forward_smem(int D) {
  return (size_t(kRows + kN) * (D + kPad) + size_t(D) * (kN + kPad)) * sizeof(bf16);
}
constexpr size_t dkdv_smem(int D) {
  const int QT = dkdv_query_rows(D);
  return (size_t(kN + QT) * 2 * (D + kPad) + size_t(D) * 2 * (QT + kPad)) * sizeof(bf16);
}
constexpr size_t dq_smem(int D) {
  return (size_t(kRows + kN) * 2 * (D + kPad) + size_t(D) * (kN + kPad)) * sizeof(bf16);
}

}  // namespace

bool mma_attention_takes(const AttentionMask& mask,
                         std::initializer_list<std::reference_wrapper<const Tensor>> operands) {
  const char* simt = std::getenv("LLM_ATTENTION_SIMT");
  if ((simt && std::strcmp(simt, "1") == 0) || mask.bias.defined()) return false;
  for (const Tensor& t : operands)
    if (t.dtype() != DType::bf16 || reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 != 0)
      return false;
  const int64_t D = operands.begin()->get().size(3);
  return D == 64 || D == 128;
}

void mma_attention_forward(cudaStream_t stream, const Tensor& q, const Tensor& k,
                           const Tensor& v, const MaskView& mask, Tensor& out, Tensor& lse) {
  const Problem<bf16> p = make_problem<bf16>(q, k, v, mask);
  const dim3 grid(static_cast<unsigned>((p.S + kRows - 1) / kRows), static_cast<unsigned>(p.H),
                  static_cast<unsigned>(q.size(0)));
  dispatch_head_dim(q.size(3), [&](auto dim) {
    constexpr int D = decltype(dim)::value;
    allow_smem(forward_kernel<D>, forward_smem(D));
    forward_kernel<D><<<grid, kBlockThreads, forward_smem(D), stream>>>(p, out.data<bf16>(),
                                                                        lse.data<float>());
  });
}

// dK/dV and dQ in two kernels: each output has one owner that sums in a fixed order, so the
// backward is deterministic without atomics, at the price of computing S and dP twice.
void mma_attention_backward(cudaStream_t stream, const Tensor& q, const Tensor& k,
                            const Tensor& v, const Tensor& dout, const Tensor& lse,
                            const Tensor& delta, const MaskView& mask, Tensor& dq, Tensor& dk,
                            Tensor& dv) {
  const Problem<bf16> p = make_problem<bf16>(q, k, v, mask);
  const unsigned tiles = static_cast<unsigned>((p.S + kRows - 1) / kRows);
  const unsigned B = static_cast<unsigned>(q.size(0));
  dispatch_head_dim(q.size(3), [&](auto dim) {
    constexpr int D = decltype(dim)::value;
    allow_smem(backward_dkdv_kernel<D>, dkdv_smem(D));
    backward_dkdv_kernel<D><<<dim3(tiles, static_cast<unsigned>(p.Hkv), B), kBlockThreads,
                              dkdv_smem(D), stream>>>(p, dout.data<bf16>(), lse.data<float>(),
                                                      delta.data<float>(), dk.data<bf16>(),
                                                      dv.data<bf16>());
    allow_smem(backward_dq_kernel<D>, dq_smem(D));
    backward_dq_kernel<D><<<dim3(tiles, static_cast<unsigned>(p.H), B), kBlockThreads, dq_smem(D),
                            stream>>>(p, dout.data<bf16>(), lse.data<float>(),
                                      delta.data<float>(), dq.data<bf16>());
  });
}

}  // namespace llm
