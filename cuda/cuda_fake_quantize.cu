// defines: CudaBackend::fake_quant_int4_forward/backward, fake_quant_int8_forward/backward,
// fake_quant_fp8_rows_forward/backward, fake_quant_int4_symmetric_forward/backward, fake_quant_mxfp4
// (quantisation-aware training, engine/fake_quantize_math.h): one warp per weight group or
// activation row, min / max and the backward's sums by shuffles in a fixed order (deterministic);
// fake_quant_fp8 (engine/fp8_math.h): the tensor's largest magnitude into a device word, then
// the cast
#include "cuda/cuda_common.cuh"
#include "engine/fake_quantize_math.h"
#include "engine/fp8_math.h"

namespace llm {

namespace {

constexpr int kWarpsPerBlock = kThreads / 32;

// torchao picks an activation row's scale and zero point in the row's dtype.
template <class T>
struct RoundLike {
  __device__ float operator()(float x) const { return to_f32(from_f32<T>(x)); }
};

__device__ __forceinline__ void warp_min_max(float& lo, float& hi) {
  for (int off = 16; off > 0; off >>= 1) {
    lo = fminf(lo, __shfl_xor_sync(0xffffffffu, lo, off));
    hi = fmaxf(hi, __shfl_xor_sync(0xffffffffu, hi, off));
  }
}

template <class A>
__device__ __forceinline__ A warp_sum(A v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// The warp's group (or row) of n elements starting at `first`; lanes stride over it.
template <class T>
__device__ void span_min_max(const T* first, int64_t n, float& lo, float& hi) {
  lo = INFINITY;
  hi = -INFINITY;
  for (int64_t i = threadIdx.x % 32; i < n; i += 32) {
    const float v = to_f32(first[i]);
    lo = fminf(lo, v);
    hi = fmaxf(hi, v);
  }
  warp_min_max(lo, hi);
}

__device__ __forceinline__ int64_t warp_index() {
  return (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32;
}

template <class T>
__device__ Int4Group warp_int4_group(const T* first, int64_t group) {
  float lo, hi;
  span_min_max(first, group, lo, hi);
  return int4_group(lo, hi);
}

template <class T>
__device__ Int8Row warp_int8_row(const T* row, int64_t n) {
  float lo, hi;
  span_min_max(row, n, lo, hi);
  return int8_row(lo, hi, RoundLike<T>{});
}

template <class T>
__global__ void int4_forward_kernel(const T* w, T* out, int64_t group, int64_t groups) {
  const int64_t gi = warp_index();
  if (gi >= groups) return;
  const T* src = w + gi * group;
  const Int4Group g = warp_int4_group(src, group);
  for (int64_t i = threadIdx.x % 32; i < group; i += 32) out[gi * group + i] = from_f32<T>(int4_fake_quant(to_f32(src[i]), g));
}

template <class T>
__global__ void int4_backward_kernel(const T* w, const T* dout, T* dw, int64_t group, int64_t groups) {
  const int64_t gi = warp_index();
  if (gi >= groups) return;
  const int64_t base = gi * group;
  const Int4Group g = warp_int4_group(w + base, group);
  float to_scale = 0.0f, to_min = 0.0f;
  int n_min = 0, n_max = 0;
  for (int64_t i = threadIdx.x % 32; i < group; i += 32) {
    const float v = to_f32(w[base + i]);
    const Int4Partials p = int4_partials(v, to_f32(dout[base + i]), g);
    to_scale += p.to_scale;
    to_min += p.to_min;
    n_min += v == g.lo;
    n_max += v == g.hi;
  }
  to_scale = warp_sum(to_scale);
  to_min = warp_sum(to_min);
  n_min = warp_sum(n_min);
  n_max = warp_sum(n_max);
  float d_min, d_max;
  int4_extreme_grads(g, to_scale, to_min, d_min, d_max);
  for (int64_t i = threadIdx.x % 32; i < group; i += 32) {
    const float v = to_f32(w[base + i]);
    float d = int4_partials(v, to_f32(dout[base + i]), g).direct;
    if (v == g.lo) d += d_min / static_cast<float>(n_min);
    if (v == g.hi) d += d_max / static_cast<float>(n_max);
    dw[base + i] = from_f32<T>(d);
  }
}

template <class T>
__global__ void int8_forward_kernel(const T* x, T* out, int64_t n, int64_t rows) {
  const int64_t r = warp_index();
  if (r >= rows) return;
  const T* row = x + r * n;
  const Int8Row q = warp_int8_row(row, n);
  for (int64_t i = threadIdx.x % 32; i < n; i += 32) out[r * n + i] = from_f32<T>(int8_fake_quant(to_f32(row[i]), q));
}

template <class T>
__global__ void int8_backward_kernel(const T* x, const T* dout, T* dx, int64_t n, int64_t rows) {
  const int64_t r = warp_index();
  if (r >= rows) return;
  const T* row = x + r * n;
  const Int8Row q = warp_int8_row(row, n);
  for (int64_t i = threadIdx.x % 32; i < n; i += 32)
    dx[r * n + i] = from_f32<T>(int8_fake_quant_grad(to_f32(row[i]), to_f32(dout[r * n + i]), q, RoundLike<T>{}));
}

// The warp's span: its largest magnitude and how many elements reach it.
template <class T>
__device__ void span_abs_max(const T* first, int64_t n, float& amax, int& ties) {
  amax = 0.0f;
  for (int64_t i = threadIdx.x % 32; i < n; i += 32) amax = fmaxf(amax, fabsf(to_f32(first[i])));
  for (int off = 16; off > 0; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
  ties = 0;
  for (int64_t i = threadIdx.x % 32; i < n; i += 32) ties += fabsf(to_f32(first[i])) == amax;
  ties = warp_sum(ties);
}

template <class T>
__global__ void fp8_rows_forward_kernel(const T* x, T* out, int64_t n, int64_t rows, float lower_bound) {
  const int64_t r = warp_index();
  if (r >= rows) return;
  const T* row = x + r * n;
  float amax;
  int ties;
  span_abs_max(row, n, amax, ties);
  const Fp8Row q = fp8_row(amax, lower_bound, RoundLike<T>{});
  for (int64_t i = threadIdx.x % 32; i < n; i += 32) out[r * n + i] = from_f32<T>(fp8_row_fake_quant(to_f32(row[i]), q));
}

template <class T>
__global__ void fp8_rows_backward_kernel(const T* x, const T* dout, T* dx, int64_t n, int64_t rows, float lower_bound) {
  const int64_t r = warp_index();
  if (r >= rows) return;
  const T* row = x + r * n;
  float amax;
  int ties;
  span_abs_max(row, n, amax, ties);
  const Fp8Row q = fp8_row(amax, lower_bound, RoundLike<T>{});
  float to_scale = 0.0f;
  for (int64_t i = threadIdx.x % 32; i < n; i += 32) to_scale += fp8_row_partials(to_f32(row[i]), to_f32(dout[r * n + i]), q).to_scale;
  const float d_amax = fp8_row_amax_grad(q, warp_sum(to_scale), RoundLike<T>{});
  for (int64_t i = threadIdx.x % 32; i < n; i += 32) {
    const float v = to_f32(row[i]);
    const float direct = to_f32(from_f32<T>(fp8_row_partials(v, to_f32(dout[r * n + i]), q).direct));
    dx[r * n + i] = from_f32<T>(direct + amax_share(v, amax, d_amax, ties));
  }
}

template <class T>
__global__ void int4_symmetric_forward_kernel(const T* w, T* out, int64_t group, int64_t groups) {
  const int64_t gi = warp_index();
  if (gi >= groups) return;
  const T* src = w + gi * group;
  float amax;
  int ties;
  span_abs_max(src, group, amax, ties);
  const Int4SymmetricGroup g = int4_symmetric_group(amax, RoundLike<T>{});
  for (int64_t i = threadIdx.x % 32; i < group; i += 32)
    out[gi * group + i] = from_f32<T>(int4_symmetric_fake_quant(to_f32(src[i]), g, RoundLike<T>{}));
}

template <class T>
__global__ void int4_symmetric_backward_kernel(const T* w, const T* dout, T* dw, int64_t group, int64_t groups) {
  const int64_t gi = warp_index();
  if (gi >= groups) return;
  const int64_t base = gi * group;
  float amax;
  int ties;
  span_abs_max(w + base, group, amax, ties);
  const Int4SymmetricGroup g = int4_symmetric_group(amax, RoundLike<T>{});
  float to_inverse = 0.0f, to_scale = 0.0f;
  for (int64_t i = threadIdx.x % 32; i < group; i += 32) {
    const Int4SymmetricPartials p = int4_symmetric_partials(to_f32(w[base + i]), to_f32(dout[base + i]), g, RoundLike<T>{});
    to_inverse += p.to_inverse;
    to_scale += p.to_scale;
  }
  const float d_amax = int4_symmetric_amax_grad(g, warp_sum(to_inverse), warp_sum(to_scale), RoundLike<T>{});
  for (int64_t i = threadIdx.x % 32; i < group; i += 32) {
    const float v = to_f32(w[base + i]);
    const float direct = int4_symmetric_partials(v, to_f32(dout[base + i]), g, RoundLike<T>{}).direct;
    dw[base + i] = from_f32<T>(direct + amax_share(v, amax, d_amax, ties));
  }
}

// One warp per block of 32 values, a lane each.
template <class T>
__global__ void mxfp4_kernel(const T* x, T* out, int64_t blocks) {
  const int64_t b = warp_index();
  if (b >= blocks) return;
  const float v = to_f32(x[b * kMxBlock + threadIdx.x % 32]);
  float amax = fabsf(v);
  for (int off = 16; off > 0; off >>= 1) {
    const float other = __shfl_xor_sync(0xffffffffu, amax, off);
    amax = isnan(amax) || isnan(other) ? NAN : fmaxf(amax, other);
  }
  out[b * kMxBlock + threadIdx.x % 32] = from_f32<T>(mxfp4_fake_quant(v, mxfp4_block_exponent(amax)));
}

// The largest |x|, as float bits (non-negative floats order as their bits), by atomicMax: the
// same result in any order.
template <class T>
__global__ void abs_max_kernel(const T* x, int64_t n, unsigned* amax_bits) {
  __shared__ float shared[32];
  float local = 0.0f;
  GRID_STRIDE_LOOP(i, n) local = fmaxf(local, fabsf(to_f32(x[i])));
  local = block_max(local, shared);
  if (threadIdx.x == 0) atomicMax(amax_bits, __float_as_uint(local));
}

template <class T>
__global__ void fp8_cast_kernel(const T* x, T* out, int64_t n, const unsigned* amax_bits, Fp8Spec spec) {
  const float scale = fp8_scale(__uint_as_float(*amax_bits), spec), inverse = 1.0f / scale;
  GRID_STRIDE_LOOP(i, n) out[i] = from_f32<T>(fake_fp8(to_f32(x[i]), scale, inverse, spec));
}

unsigned warp_blocks(int64_t warps) { return static_cast<unsigned>((warps + kWarpsPerBlock - 1) / kWarpsPerBlock); }

}  // namespace

void CudaBackend::fake_quant_int4_forward(const Tensor& w, int64_t group, Tensor& out) {
  const int64_t groups = w.numel() / group;
  if (groups == 0) return;
  activate();
  dispatch_float("fake_quant_int4", w, [&](auto tag) {
    using T = decltype(tag);
    int4_forward_kernel<<<warp_blocks(groups), kThreads, 0, stream_>>>(w.data<T>(), out.data<T>(), group, groups);
  });
  CUDA_CHECK_OP("fake_quant_int4", w, out);
}

void CudaBackend::fake_quant_int4_backward(const Tensor& w, const Tensor& dout, int64_t group, Tensor& dw) {
  const int64_t groups = w.numel() / group;
  if (groups == 0) return;
  require_same_dtype("fake_quant_int4 backward", w, dout);
  activate();
  dispatch_float("fake_quant_int4", w, [&](auto tag) {
    using T = decltype(tag);
    int4_backward_kernel<<<warp_blocks(groups), kThreads, 0, stream_>>>(w.data<T>(), dout.data<T>(), dw.data<T>(),
                                                                        group, groups);
  });
  CUDA_CHECK_OP("fake_quant_int4 backward", w, dw);
}

void CudaBackend::fake_quant_int8_forward(const Tensor& x, Tensor& out) {
  const int64_t rows = x.size(0), n = x.size(1);
  if (rows == 0 || n == 0) return;
  activate();
  dispatch_float("fake_quant_int8", x, [&](auto tag) {
    using T = decltype(tag);
    int8_forward_kernel<<<warp_blocks(rows), kThreads, 0, stream_>>>(x.data<T>(), out.data<T>(), n, rows);
  });
  CUDA_CHECK_OP("fake_quant_int8", x, out);
}

void CudaBackend::fake_quant_int8_backward(const Tensor& x, const Tensor& dout, Tensor& dx) {
  const int64_t rows = x.size(0), n = x.size(1);
  if (rows == 0 || n == 0) return;
  require_same_dtype("fake_quant_int8 backward", x, dout);
  activate();
  dispatch_float("fake_quant_int8", x, [&](auto tag) {
    using T = decltype(tag);
    int8_backward_kernel<<<warp_blocks(rows), kThreads, 0, stream_>>>(x.data<T>(), dout.data<T>(), dx.data<T>(), n,
                                                                      rows);
  });
  CUDA_CHECK_OP("fake_quant_int8 backward", x, dx);
}

void CudaBackend::fake_quant_fp8_rows_forward(const Tensor& x, float lower_bound, Tensor& out) {
  const int64_t n = x.size(-1), rows = n == 0 ? 0 : x.numel() / n;
  if (rows == 0) return;
  activate();
  dispatch_float("fake_quant_fp8_rows", x, [&](auto tag) {
    using T = decltype(tag);
    fp8_rows_forward_kernel<<<warp_blocks(rows), kThreads, 0, stream_>>>(x.data<T>(), out.data<T>(), n, rows,
                                                                         lower_bound);
  });
  CUDA_CHECK_OP("fake_quant_fp8_rows", x, out);
}

void CudaBackend::fake_quant_fp8_rows_backward(const Tensor& x, const Tensor& dout, float lower_bound, Tensor& dx) {
  const int64_t n = x.size(-1), rows = n == 0 ? 0 : x.numel() / n;
  if (rows == 0) return;
  require_same_dtype("fake_quant_fp8_rows backward", x, dout);
  activate();
  dispatch_float("fake_quant_fp8_rows", x, [&](auto tag) {
    using T = decltype(tag);
    fp8_rows_backward_kernel<<<warp_blocks(rows), kThreads, 0, stream_>>>(x.data<T>(), dout.data<T>(), dx.data<T>(),
                                                                          n, rows, lower_bound);
  });
  CUDA_CHECK_OP("fake_quant_fp8_rows backward", x, dx);
}

void CudaBackend::fake_quant_int4_symmetric_forward(const Tensor& w, int64_t group, Tensor& out) {
  const int64_t groups = w.numel() / group;
  if (groups == 0) return;
  activate();
  dispatch_float("fake_quant_int4_symmetric", w, [&](auto tag) {
    using T = decltype(tag);
    int4_symmetric_forward_kernel<<<warp_blocks(groups), kThreads, 0, stream_>>>(w.data<T>(), out.data<T>(), group,
                                                                                 groups);
  });
  CUDA_CHECK_OP("fake_quant_int4_symmetric", w, out);
}

void CudaBackend::fake_quant_int4_symmetric_backward(const Tensor& w, const Tensor& dout, int64_t group, Tensor& dw) {
  const int64_t groups = w.numel() / group;
  if (groups == 0) return;
  require_same_dtype("fake_quant_int4_symmetric backward", w, dout);
  activate();
  dispatch_float("fake_quant_int4_symmetric", w, [&](auto tag) {
    using T = decltype(tag);
    int4_symmetric_backward_kernel<<<warp_blocks(groups), kThreads, 0, stream_>>>(
        w.data<T>(), dout.data<T>(), dw.data<T>(), group, groups);
  });
  CUDA_CHECK_OP("fake_quant_int4_symmetric backward", w, dw);
}

void CudaBackend::fake_quant_mxfp4(const Tensor& x, Tensor& out) {
  const int64_t blocks = x.numel() / kMxBlock;
  if (blocks == 0) return;
  activate();
  dispatch_float("fake_quant_mxfp4", x, [&](auto tag) {
    using T = decltype(tag);
    mxfp4_kernel<<<warp_blocks(blocks), kThreads, 0, stream_>>>(x.data<T>(), out.data<T>(), blocks);
  });
  CUDA_CHECK_OP("fake_quant_mxfp4", x, out);
}

void CudaBackend::fake_quant_fp8(const Tensor& x, Fp8Format format, Tensor& out) {
  const int64_t n = x.numel();
  if (n == 0) return;
  activate();
  Tensor amax = Tensor::zeros({1}, DType::i32, x.device());  // float bits, 0 = +0.0
  unsigned* bits = reinterpret_cast<unsigned*>(amax.data<int32_t>());
  dispatch_float("fake_quant_fp8", x, [&](auto tag) {
    using T = decltype(tag);
    abs_max_kernel<<<grid_for(n), kThreads, 0, stream_>>>(x.data<T>(), n, bits);
    fp8_cast_kernel<<<grid_for(n), kThreads, 0, stream_>>>(x.data<T>(), out.data<T>(), n, bits, fp8_spec(format));
  });
  CUDA_CHECK_OP("fake_quant_fp8", x, out);
}

}  // namespace llm
