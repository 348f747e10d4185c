// defines: CudaBackend::rmsnorm_forward, rmsnorm_backward (row statistics in f32; dweight
// reduced deterministically: per row-chunk partial sums, then a fixed-order sum of the chunks);
// add_rmsnorm_forward, add_rmsnorm_backward: the same with the residual add before it fused in
#include <algorithm>

#include "cuda/cuda_common.cuh"

namespace llm {

namespace {

// Row chunks of the dweight reduction: a function of the row count only, so the summation order
// is the same on every run and every GPU.
constexpr int64_t kWeightChunks = 128;

// One block per row: y = x * rstd * w with rstd = 1 / sqrt(mean(x^2) + eps), saved for backward.
template <class T>
__global__ void rmsnorm_forward_kernel(const T* x, const T* w, float eps, T* y, float* rstd,
                                       int64_t C) {
  __shared__ float shared[32];
  const T* row = x + blockIdx.x * C;
  const float ss = row_sum_squares(row, C, shared);
  const float r = 1.0f / sqrtf(ss / static_cast<float>(C) + eps);
  if (threadIdx.x == 0) rstd[blockIdx.x] = r;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    y[blockIdx.x * C + c] = from_f32<T>(to_f32(row[c]) * r * to_f32(w[c]));
}

// One block per row: h = x + res (rounded to T, as an unfused add stores it), then h's norm as
// rmsnorm_forward_kernel. Each thread reads back only the h elements it wrote itself.
template <class T>
__global__ void add_rmsnorm_forward_kernel(const T* x, const T* res, const T* w, float eps, T* h,
                                           T* y, float* rstd, int64_t C) {
  __shared__ float shared[32];
  const int64_t base = blockIdx.x * C;
  float ss = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const T v = from_f32<T>(to_f32(x[base + c]) + to_f32(res[base + c]));
    h[base + c] = v;
    ss += to_f32(v) * to_f32(v);
  }
  ss = block_sum(ss, shared);
  const float r = 1.0f / sqrtf(ss / static_cast<float>(C) + eps);
  if (threadIdx.x == 0) rstd[blockIdx.x] = r;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    y[base + c] = from_f32<T>(to_f32(h[base + c]) * r * to_f32(w[c]));
}

// With xhat = x * r: dx = r * (dy*w - xhat * mean(dy*w*xhat)), plus dx_in when given (the fused
// residual's own gradient). The norm's part is rounded to T before that sum, with no FMA across
// it, as autograd adds the unfused op's stored dx: fused or not (recompute segments change which),
// the gradient is the same bits. One block per row.
template <class T>
__global__ void rmsnorm_backward_dx_kernel(const T* x, const T* w, const float* rstd, const T* dy,
                                           const T* dx_in, T* dx, int64_t C) {
  __shared__ float shared[32];
  const int64_t base = blockIdx.x * C;
  const float r = rstd[blockIdx.x];
  float dot = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    dot += to_f32(dy[base + c]) * to_f32(w[c]) * to_f32(x[base + c]) * r;
  dot = block_sum(dot, shared) / static_cast<float>(C);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float xv = to_f32(x[base + c]);
    const T norm_part = from_f32<T>(r * (to_f32(dy[base + c]) * to_f32(w[c]) - xv * r * dot));
    dx[base + c] = dx_in ? from_f32<T>(__fadd_rn(to_f32(dx_in[base + c]), to_f32(norm_part)))
                         : norm_part;
  }
}

// partial[chunk, c] = sum over the chunk's rows, in order, of dy * x * rstd.
// grid: (channel blocks, chunks).
template <class T>
__global__ void rmsnorm_dweight_partial_kernel(const T* x, const float* rstd, const T* dy,
                                               float* partial, int64_t N, int64_t C,
                                               int64_t rows_per_chunk) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  const int64_t begin = blockIdx.y * rows_per_chunk;
  const int64_t end = min(N, begin + rows_per_chunk);
  float acc = 0.0f;
  for (int64_t i = begin; i < end; i++)
    acc += to_f32(dy[i * C + c]) * to_f32(x[i * C + c]) * rstd[i];
  partial[blockIdx.y * C + c] = acc;
}

template <class T>
__global__ void rmsnorm_dweight_final_kernel(const float* partial, int64_t chunks, T* dw,
                                             int64_t C) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  float acc = 0.0f;
  for (int64_t k = 0; k < chunks; k++) acc += partial[k * C + c];
  dw[c] = from_f32<T>(acc);
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
    rmsnorm_forward_kernel<<<N, kThreads, 0, stream_>>>(x.data<T>(), w.data<T>(), eps,
                                                        y.data<T>(), rstd.data<float>(), C);
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
    add_rmsnorm_forward_kernel<<<N, kThreads, 0, stream_>>>(x.data<T>(), r.data<T>(), w.data<T>(),
                                                            eps, h.data<T>(), y.data<T>(),
                                                            rstd.data<float>(), C);
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
  activate();
  const int64_t chunks = std::max<int64_t>(1, std::min(N, kWeightChunks));
  const int64_t rows_per_chunk = (N + chunks - 1) / chunks;
  Tensor partial = scratch({chunks, C}, DType::f32);
  const unsigned channel_blocks = static_cast<unsigned>((C + kThreads - 1) / kThreads);
  dispatch_float(op, x, [&](auto tag) {
    using T = decltype(tag);
    if (N > 0)
      rmsnorm_backward_dx_kernel<<<N, kThreads, 0, stream_>>>(
          x.data<T>(), w.data<T>(), rstd.data<float>(), dy.data<T>(),
          dx_in.defined() ? dx_in.data<T>() : nullptr, dx.data<T>(), C);
    rmsnorm_dweight_partial_kernel<<<dim3(channel_blocks, chunks), kThreads, 0, stream_>>>(
        x.data<T>(), rstd.data<float>(), dy.data<T>(), partial.data<float>(), N, C,
        rows_per_chunk);
    rmsnorm_dweight_final_kernel<<<channel_blocks, kThreads, 0, stream_>>>(
        partial.data<float>(), chunks, dw.data<T>(), C);
  });
  CUDA_CHECK_OP(op, x, w, rstd, dy, dx, dw);
}

}  // namespace llm
