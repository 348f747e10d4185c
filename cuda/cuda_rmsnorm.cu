// defines: CudaBackend::rmsnorm_forward, rmsnorm_backward (row statistics in f32; dweight
// reduced deterministically: per row-chunk partial sums, then a fixed-order sum of the chunks);
// add_rmsnorm_forward, add_rmsnorm_backward: the same with the residual add before it fused in
//
// The row kernels take a 16-byte word a load (W = 4 f32 or 8 bf16 elements) when every row they
// touch starts on one (cuda/vec.cuh), else W = 1: one element a load, rmsnorm's forward read at
// 24% of an H200's HBM bandwidth (bench/results/2026-11-30-gpu-run.md), 4 bf16 a load 42%
// (2026-12-04-gpu-run.md). W fixes each thread's share of a row and so the order of its sums: the
// model's rows (fresh tensors, C a multiple of 8) always take the word, so a fused add + norm and
// the unfused pair (recompute segments change which runs) agree bit for bit.
#include <algorithm>
#include <map>
#include <mutex>

#include "cuda/cuda_common.cuh"
#include "cuda/vec.cuh"

namespace llm {

namespace {

// Row chunks of the backward (a block each) and of its dweight reduction: a function of the row
// count only, so the summation order is the same on every run and every GPU. 256 blocks are two
// an SM on an H100 or H200; the partial sums they write (C floats each) are 2 MiB at C = 2048.
constexpr int64_t kWeightChunks = 256;

// The block's row x (sum of squares ss) to y = x * rstd * w, with rstd = 1 / sqrt(ss / C + eps)
// saved for backward.
template <int W, class T>
__device__ __forceinline__ void normalize_row(const T* x, const T* w, T* y, int64_t C, float ss, float eps,
                                              float* rstd) {
  const float r = 1.0f / sqrtf(ss / static_cast<float>(C) + eps);
  if (threadIdx.x == 0) rstd[blockIdx.x] = r;
  for (int64_t u = threadIdx.x; u < C / W; u += blockDim.x) {
    const VecN<T, W> v = load_vec<W>(x, u), g = load_vec<W>(w, u);
    VecN<T, W> out;
    for (int j = 0; j < W; j++) out.v[j] = from_f32<T>(to_f32(v.v[j]) * r * to_f32(g.v[j]));
    store_vec<W>(y, u, out);
  }
}

// One block per row: rmsnorm.
template <class T, int W>
__global__ void rmsnorm_forward_kernel(const T* x, const T* w, float eps, T* y, float* rstd,
                                       int64_t C) {
  __shared__ float shared[32];
  const int64_t base = blockIdx.x * C, units = C / W;
  float ss = 0.0f;
  for (int64_t u = threadIdx.x; u < units; u += blockDim.x) {
    const VecN<T, W> v = load_vec<W>(x + base, u);
    for (int j = 0; j < W; j++) ss += to_f32(v.v[j]) * to_f32(v.v[j]);
  }
  normalize_row<W>(x + base, w, y + base, C, block_sum(ss, shared), eps, rstd);
}

// One block per row: h = x + res (rounded to T, as an unfused add stores it), then h's norm as
// rmsnorm_forward_kernel. Each thread reads back only the h elements it wrote itself.
template <class T, int W>
__global__ void add_rmsnorm_forward_kernel(const T* x, const T* res, const T* w, float eps, T* h,
                                           T* y, float* rstd, int64_t C) {
  __shared__ float shared[32];
  const int64_t base = blockIdx.x * C, units = C / W;
  float ss = 0.0f;
  for (int64_t u = threadIdx.x; u < units; u += blockDim.x) {
    const VecN<T, W> a = load_vec<W>(x + base, u), b = load_vec<W>(res + base, u);
    VecN<T, W> sum;
    for (int j = 0; j < W; j++) {
      sum.v[j] = from_f32<T>(to_f32(a.v[j]) + to_f32(b.v[j]));
      ss += to_f32(sum.v[j]) * to_f32(sum.v[j]);
    }
    store_vec<W>(h + base, u, sum);
  }
  normalize_row<W>(h + base, w, y + base, C, block_sum(ss, shared), eps, rstd);
}

// One warp a row where the row is at most kMaxLaneWords words a lane (C up to 2048 bf16 or 1024
// f32 at a 16-byte word; 16 words took 157-177 registers with the residual, one block an SM): the
// warp loads its whole row (kWords words a lane, all in flight at once), sums its squares by
// shuffles alone, and writes y from the words it holds. One block of 256 threads a row waited on
// one load a thread, then on two barriers, then read the row again: rmsnorm's forward read at 42%
// of an H200's HBM bandwidth at (4096, 2048) bf16 and add_rmsnorm's at 61% (2026-12-04-gpu-run.md).
// kAdd: h = x + res first (rounded to T, as the unfused add stores it), then h's norm: both forms
// sum a row in this kernel's order, so the fused op and the unfused pair give the same bits.
constexpr int kMaxLaneWords = 8;
template <class T, int W, int kWords, bool kAdd>
__global__ void rmsnorm_forward_warp_kernel(const T* x, const T* res, const T* w, float eps, T* h, T* y,
                                            float* rstd, int64_t N, int64_t C) {
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= N) return;  // the whole warp
  const int lane = threadIdx.x % 32;
  const int64_t base = row * C, units = C / W;
  VecN<T, W> v[kWords];
#pragma unroll
  for (int k = 0; k < kWords; k++)
    if (lane + 32 * k < units) v[k] = load_vec<W>(x + base, lane + 32 * k);
  if constexpr (kAdd) {
#pragma unroll
    for (int k = 0; k < kWords; k++) {
      if (lane + 32 * k >= units) continue;
      const VecN<T, W> b = load_vec<W>(res + base, lane + 32 * k);
      for (int j = 0; j < W; j++) v[k].v[j] = from_f32<T>(to_f32(v[k].v[j]) + to_f32(b.v[j]));
      store_vec<W>(h + base, lane + 32 * k, v[k]);
    }
  }
  float ss = 0.0f;
#pragma unroll
  for (int k = 0; k < kWords; k++)
    if (lane + 32 * k < units)
      for (int j = 0; j < W; j++) ss += to_f32(v[k].v[j]) * to_f32(v[k].v[j]);
  for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);  // every lane the same sum
  const float r = 1.0f / sqrtf(ss / static_cast<float>(C) + eps);
  if (lane == 0) rstd[row] = r;
#pragma unroll
  for (int k = 0; k < kWords; k++) {
    if (lane + 32 * k >= units) continue;
    const VecN<T, W> g = load_vec<W>(w, lane + 32 * k);
    VecN<T, W> out;
    for (int j = 0; j < W; j++) out.v[j] = from_f32<T>(to_f32(v[k].v[j]) * r * to_f32(g.v[j]));
    store_vec<W>(y + base, lane + 32 * k, out);
  }
}

// Launches the norm's forward over N rows of C (kAdd: with the residual add): the warp kernel at
// the fewest words a lane that hold a row, when the rows take a wide word and fit, else the block
// kernels.
template <class T, bool kAdd>
void launch_norm_forward(const T* x, const T* res, const T* w, float eps, T* h, T* y, float* rstd, int64_t N,
                         int64_t C, cudaStream_t stream) {
  // Without the residual, res and h are null, which counts as aligned.
  with_row_width<wide_width<T>()>(C, [&](auto width) {
    constexpr int W = width();
    const int64_t lane_words = (C / W + 31) / 32;
    if constexpr (W > 1) {
      if (lane_words <= kMaxLaneWords) {
        const unsigned blocks = static_cast<unsigned>((N + kThreads / 32 - 1) / (kThreads / 32));
        const auto warp_rows = [&](auto words) {
          rmsnorm_forward_warp_kernel<T, W, words(), kAdd><<<blocks, kThreads, 0, stream>>>(x, res, w, eps, h, y,
                                                                                           rstd, N, C);
        };
        if (lane_words <= 1) warp_rows(std::integral_constant<int, 1>{});
        else if (lane_words <= 2) warp_rows(std::integral_constant<int, 2>{});
        else if (lane_words <= 4) warp_rows(std::integral_constant<int, 4>{});
        else warp_rows(std::integral_constant<int, kMaxLaneWords>{});
        return;
      }
    }
    if constexpr (kAdd)
      add_rmsnorm_forward_kernel<T, W><<<N, kThreads, 0, stream>>>(x, res, w, eps, h, y, rstd, C);
    else
      rmsnorm_forward_kernel<T, W><<<N, kThreads, 0, stream>>>(x, w, eps, y, rstd, C);
  }, x, res, w, static_cast<const T*>(h), static_cast<const T*>(y));
}

// With xhat = x * r: dx = r * (dy*w - xhat * mean(dy*w*xhat)), plus dx_in when given (the fused
// residual's own gradient). The norm's part is rounded to T before that sum, with no FMA across
// it, as autograd adds the unfused op's stored dx: fused or not (recompute segments change which),
// the gradient is the same bits.
//
// One block per chunk of rows_per_chunk rows, one row at a time, the whole block on each row; on
// the way it adds dy * x * rstd for the columns each thread owns into the chunk's dweight sums
// (dynamic shared memory, C floats, each touched by its one thread: in row order, no race), then
// writes them to partial[chunk]. A separate dweight pass read dy and x a second time, one element a
// load, and this op ran at 28% of an H200's HBM bandwidth (bench/results/2026-12-04-gpu-run.md).
template <class T, int W>
__global__ void rmsnorm_backward_kernel(const T* x, const T* w, const float* rstd, const T* dy,
                                        const T* dx_in, T* dx, float* partial, int64_t N, int64_t C,
                                        int64_t rows_per_chunk) {
  __shared__ float shared[32];
  extern __shared__ __align__(32) float dweight_sums[];  // C
  const int64_t units = C / W, begin = blockIdx.x * rows_per_chunk, end = min(N, begin + rows_per_chunk);
  for (int64_t u = threadIdx.x; u < units; u += blockDim.x) store_vec<W>(dweight_sums, u, VecN<float, W>{});
  for (int64_t row = begin; row < end; row++) {
    const int64_t base = row * C;
    const float r = rstd[row];
    float dot = 0.0f;
    for (int64_t u = threadIdx.x; u < units; u += blockDim.x) {
      const VecN<T, W> d = load_vec<W>(dy + base, u), g = load_vec<W>(w, u), v = load_vec<W>(x + base, u);
      for (int j = 0; j < W; j++) dot += to_f32(d.v[j]) * to_f32(g.v[j]) * to_f32(v.v[j]) * r;
    }
    dot = block_sum(dot, shared) / static_cast<float>(C);
    for (int64_t u = threadIdx.x; u < units; u += blockDim.x) {
      const VecN<T, W> d = load_vec<W>(dy + base, u), g = load_vec<W>(w, u), v = load_vec<W>(x + base, u);
      VecN<T, W> in, out;
      if (dx_in) in = load_vec<W>(dx_in + base, u);
      VecN<float, W> sums = load_vec<W>(static_cast<const float*>(dweight_sums), u);
      for (int j = 0; j < W; j++) {
        const float xv = to_f32(v.v[j]), dv = to_f32(d.v[j]);
        const T norm_part = from_f32<T>(r * (dv * to_f32(g.v[j]) - xv * r * dot));
        out.v[j] = dx_in ? from_f32<T>(__fadd_rn(to_f32(in.v[j]), to_f32(norm_part))) : norm_part;
        sums.v[j] += dv * xv * r;
      }
      store_vec<W>(dx + base, u, out);
      store_vec<W>(dweight_sums, u, sums);
    }
  }
  for (int64_t u = threadIdx.x; u < units; u += blockDim.x)
    store_vec<W>(partial + blockIdx.x * C, u, load_vec<W>(static_cast<const float*>(dweight_sums), u));
}

// dw[c] = the chunks' partial sums in chunk order: kSumSlices threads a column, each summing every
// kSumSlices-th chunk (independent loads, many in flight), then one thread the slices in order.
// A thread a column summing all the chunks serially left the pass waiting on one load at a time.
// block: (32 columns, kSumSlices).
constexpr int kSumSlices = 8;
template <class T>
__global__ void rmsnorm_dweight_final_kernel(const float* partial, int64_t chunks, T* dw, int64_t C) {
  __shared__ float slices[kSumSlices][32];
  const int64_t c = blockIdx.x * 32 + threadIdx.x;
  float acc = 0.0f;
  if (c < C)
    for (int64_t k = threadIdx.y; k < chunks; k += kSumSlices) acc += partial[k * C + c];
  slices[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y != 0 || c >= C) return;
  float total = 0.0f;
  for (int k = 0; k < kSumSlices; k++) total += slices[k][threadIdx.x];
  dw[c] = from_f32<T>(total);
}

// The dynamic shared memory (the dweight sums, C floats) rmsnorm_backward_kernel<T, W> may take on
// the current device: its opt-in limit less the kernel's static share (block_sum's), asked for
// once a device (the attribute is the device's: a process that drives two GPUs asks on each).
// Past 48 KiB a kernel has to ask, and static and dynamic count together: a test against 48 KiB
// of dynamic memory alone misses rows whose sums fit it but not beside the static part. H100 and
// H200: 227 KiB, C up to about 58000; A100 163 KiB; RTX 30 and 40 series 99 KiB.
template <class T, int W>
size_t backward_sums_limit() {
  static std::mutex mutex;
  static std::map<int, size_t> limits;
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = limits.find(device); it != limits.end()) return it->second;
  int optin = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  cudaFuncAttributes attr{};
  CUDA_CHECK(cudaFuncGetAttributes(&attr, rmsnorm_backward_kernel<T, W>));
  const size_t limit = static_cast<size_t>(optin) - attr.sharedSizeBytes;
  CUDA_CHECK(cudaFuncSetAttribute(rmsnorm_backward_kernel<T, W>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  int(limit)));
  return limits.emplace(device, limit).first->second;
}

}  // namespace

void CudaBackend::rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y,
                                  Tensor& rstd) {
  require_same_dtype("rmsnorm", x, w);
  const int64_t C = x.size(-1), N = x.numel() / C;
  if (N == 0) return;
  activate();
  dispatch_float("rmsnorm", x, [&](auto tag) {
    using T = decltype(tag);
    launch_norm_forward<T, false>(x.data<T>(), nullptr, w.data<T>(), eps, nullptr, y.data<T>(), rstd.data<float>(),
                                  N, C, stream_);
  });
  CUDA_CHECK_OP("rmsnorm", x, w, y, rstd);
}

void CudaBackend::rmsnorm_backward(const Tensor& x, const Tensor& w, const Tensor& rstd,
                                   const Tensor& dy, Tensor& dx, Tensor& dw) {
  norm_backward("rmsnorm_backward", x, w, rstd, dy, Tensor(), dx, dw);
}

void CudaBackend::add_rmsnorm_forward(const Tensor& x, const Tensor& r, const Tensor& w, float eps,
                                      Tensor& h, Tensor& y, Tensor& rstd) {
  require_same_dtype("add_rmsnorm", x, r);
  require_same_dtype("add_rmsnorm", x, w);
  const int64_t C = x.size(-1), N = x.numel() / C;
  if (N == 0) return;
  activate();
  dispatch_float("add_rmsnorm", x, [&](auto tag) {
    using T = decltype(tag);
    launch_norm_forward<T, true>(x.data<T>(), r.data<T>(), w.data<T>(), eps, h.data<T>(), y.data<T>(),
                                 rstd.data<float>(), N, C, stream_);
  });
  CUDA_CHECK_OP("add_rmsnorm", x, r, w, h, y, rstd);
}

void CudaBackend::add_rmsnorm_backward(const Tensor& h, const Tensor& w, const Tensor& rstd,
                                       const Tensor& dy, const Tensor& dh_in, Tensor& dh,
                                       Tensor& dw) {
  require_same_dtype("add_rmsnorm_backward", h, dh_in);
  norm_backward("add_rmsnorm_backward", h, w, rstd, dy, dh_in, dh, dw);
}

// rmsnorm's backward, adding dx_in (when defined) into dx in the same pass.
void CudaBackend::norm_backward(const char* op, const Tensor& x, const Tensor& w,
                                const Tensor& rstd, const Tensor& dy, const Tensor& dx_in,
                                Tensor& dx, Tensor& dw) {
  require_same_dtype(op, x, w);
  require_same_dtype(op, x, dy);
  const int64_t C = x.size(-1), N = x.numel() / C;
  const size_t sums_bytes = static_cast<size_t>(C) * sizeof(float);
  activate();
  const int64_t rows_per_chunk = std::max<int64_t>(1, (N + kWeightChunks - 1) / kWeightChunks);
  const int64_t chunks = std::max<int64_t>(1, (N + rows_per_chunk - 1) / rows_per_chunk);
  Tensor partial = scratch({chunks, C}, DType::f32);
  dispatch_float(op, x, [&](auto tag) {
    using T = decltype(tag);
    const T *xp = x.data<T>(), *wp = w.data<T>(), *dyp = dy.data<T>();
    const T* inp = dx_in.defined() ? dx_in.data<T>() : nullptr;  // null is aligned: no residual
    T* dxp = dx.data<T>();
    with_row_width<wide_width<T>()>(C, [&](auto width) {
      const size_t limit = backward_sums_limit<T, width()>();
      LLM_CHECK(sums_bytes <= limit, std::string(op) + ": rows of " + std::to_string(C) +
                                         " elements; this device's shared memory takes at most " +
                                         std::to_string(limit / sizeof(float)));
      rmsnorm_backward_kernel<T, width()><<<chunks, kThreads, sums_bytes, stream_>>>(xp, wp, rstd.data<float>(), dyp, inp, dxp,
                                                        partial.data<float>(), N, C, rows_per_chunk);
    }, xp, wp, dyp, inp, static_cast<const T*>(dxp), static_cast<const float*>(partial.data<float>()));
    const unsigned column_blocks = static_cast<unsigned>((C + 31) / 32);
    rmsnorm_dweight_final_kernel<<<column_blocks, dim3(32, kSumSlices), 0, stream_>>>(
        partial.data<float>(), chunks, dw.data<T>(), C);
  });
  CUDA_CHECK_OP(op, x, w, rstd, dy, dx, dw);
}

}  // namespace llm
