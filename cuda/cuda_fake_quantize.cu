// defines: CudaBackend::fake_quant_int4_forward/backward, fake_quant_int8_forward/backward,
// fake_quant_fp8_rows_forward/backward, fake_quant_int4_symmetric_forward/backward, fake_quant_mxfp4,
// fake_quant_ternary, fake_quant_int8_absmax (quantisation-aware training, engine/fake_quantize_math.h): one warp per weight group or
// activation row, min / max and the backward's sums by shuffles in a fixed order (deterministic);
// fake_quant_fp8 (engine/fp8_math.h): the tensor's largest magnitude into a device word, then
// the cast
#include "cuda/cuda_common.cuh"
#include "cuda/vec.cuh"
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

// The largest |x|, as float bits (non-negative floats order as their bits), by atomicMax: the
// same result in any order. Both passes take a 16-byte word a load where aligned (cuda/vec.cuh):
// fp8 training casts x, w and dy of every linear layer this way.
template <class T, int W>
__global__ void abs_max_kernel(const T* x, int64_t n, unsigned* amax_bits) {
  __shared__ float shared[32];
  float local = 0.0f;
  for_each_vec<W>(n, [&](auto width, int64_t unit) {
    constexpr int K = decltype(width)::value;
    const VecN<T, K> v = load_vec<K>(x, unit);
#pragma unroll
    for (int j = 0; j < K; j++) local = fmaxf(local, fabsf(to_f32(v.v[j])));
  });
  local = block_max(local, shared);
  if (threadIdx.x == 0) atomicMax(amax_bits, __float_as_uint(local));
}

template <class T, int W>
__global__ void fp8_cast_kernel(const T* x, T* out, int64_t n, const unsigned* amax_bits, Fp8Spec spec) {
  const float scale = fp8_scale(__uint_as_float(*amax_bits), spec), inverse = 1.0f / scale;
  for_each_vec<W>(n, [&](auto width, int64_t unit) {
    map_unit<decltype(width)::value>(x, out, unit, [&](float v, int) { return fake_fp8(v, scale, inverse, spec); });
  });
}

// Every quantiser works on spans of consecutive elements (a weight group, an activation row, an
// MX block), one warp a span: the two kernels hand each warp its span and the functor does the
// rest, forward(x, out, n) or backward(x, dout, dx, n) for its element type.
template <class T, class Forward>
__global__ void per_span_forward_kernel(const T* x, T* out, int64_t span, int64_t spans, Forward forward) {
  const int64_t s = warp_index();
  if (s < spans) forward(x + s * span, out + s * span, span);
}

template <class T, class Backward>
__global__ void per_span_backward_kernel(const T* x, const T* dout, T* dx, int64_t span, int64_t spans,
                                         Backward backward) {
  const int64_t s = warp_index();
  if (s < spans) backward(x + s * span, dout + s * span, dx + s * span, span);
}

struct Int4Forward {
  template <class T>
  __device__ void operator()(const T* w, T* out, int64_t n) const {
    const Int4Group g = warp_int4_group(w, n);
    for (int64_t i = threadIdx.x % 32; i < n; i += 32) out[i] = from_f32<T>(int4_fake_quant(to_f32(w[i]), g));
  }
};

struct Int4Backward {
  template <class T>
  __device__ void operator()(const T* w, const T* dout, T* dw, int64_t n) const {
    const Int4Group g = warp_int4_group(w, n);
    float to_scale = 0.0f, to_min = 0.0f;
    int n_min = 0, n_max = 0;
    for (int64_t i = threadIdx.x % 32; i < n; i += 32) {
      const float v = to_f32(w[i]);
      const Int4Partials p = int4_partials(v, to_f32(dout[i]), g);
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
    for (int64_t i = threadIdx.x % 32; i < n; i += 32) {
      const float v = to_f32(w[i]);
      float d = int4_partials(v, to_f32(dout[i]), g).direct;
      if (v == g.lo) d += d_min / static_cast<float>(n_min);
      if (v == g.hi) d += d_max / static_cast<float>(n_max);
      dw[i] = from_f32<T>(d);
    }
  }
};

struct Int8Forward {
  template <class T>
  __device__ void operator()(const T* x, T* out, int64_t n) const {
    const Int8Row q = warp_int8_row(x, n);
    for (int64_t i = threadIdx.x % 32; i < n; i += 32) out[i] = from_f32<T>(int8_fake_quant(to_f32(x[i]), q));
  }
};

struct Int8Backward {
  template <class T>
  __device__ void operator()(const T* x, const T* dout, T* dx, int64_t n) const {
    const Int8Row q = warp_int8_row(x, n);
    for (int64_t i = threadIdx.x % 32; i < n; i += 32)
      dx[i] = from_f32<T>(int8_fake_quant_grad(to_f32(x[i]), to_f32(dout[i]), q, RoundLike<T>{}));
  }
};

struct Fp8RowsForward {
  float lower_bound;
  template <class T>
  __device__ void operator()(const T* x, T* out, int64_t n) const {
    float amax;
    int ties;
    span_abs_max(x, n, amax, ties);
    const Fp8Row q = fp8_row(amax, lower_bound, RoundLike<T>{});
    for (int64_t i = threadIdx.x % 32; i < n; i += 32) out[i] = from_f32<T>(fp8_row_fake_quant(to_f32(x[i]), q));
  }
};

struct Fp8RowsBackward {
  float lower_bound;
  template <class T>
  __device__ void operator()(const T* x, const T* dout, T* dx, int64_t n) const {
    float amax;
    int ties;
    span_abs_max(x, n, amax, ties);
    const Fp8Row q = fp8_row(amax, lower_bound, RoundLike<T>{});
    float to_scale = 0.0f;
    for (int64_t i = threadIdx.x % 32; i < n; i += 32) to_scale += fp8_row_partials(to_f32(x[i]), to_f32(dout[i]), q).to_scale;
    const float d_amax = fp8_row_amax_grad(q, warp_sum(to_scale), RoundLike<T>{});
    for (int64_t i = threadIdx.x % 32; i < n; i += 32) {
      const float v = to_f32(x[i]);
      const float direct = to_f32(from_f32<T>(fp8_row_partials(v, to_f32(dout[i]), q).direct));
      dx[i] = from_f32<T>(direct + amax_share(v, amax, d_amax, ties));
    }
  }
};

struct Int4SymmetricForward {
  template <class T>
  __device__ void operator()(const T* w, T* out, int64_t n) const {
    float amax;
    int ties;
    span_abs_max(w, n, amax, ties);
    const Int4SymmetricGroup g = int4_symmetric_group(amax, RoundLike<T>{});
    for (int64_t i = threadIdx.x % 32; i < n; i += 32)
      out[i] = from_f32<T>(int4_symmetric_fake_quant(to_f32(w[i]), g, RoundLike<T>{}));
  }
};

struct Int4SymmetricBackward {
  template <class T>
  __device__ void operator()(const T* w, const T* dout, T* dw, int64_t n) const {
    float amax;
    int ties;
    span_abs_max(w, n, amax, ties);
    const Int4SymmetricGroup g = int4_symmetric_group(amax, RoundLike<T>{});
    float to_inverse = 0.0f, to_scale = 0.0f;
    for (int64_t i = threadIdx.x % 32; i < n; i += 32) {
      const Int4SymmetricPartials p = int4_symmetric_partials(to_f32(w[i]), to_f32(dout[i]), g, RoundLike<T>{});
      to_inverse += p.to_inverse;
      to_scale += p.to_scale;
    }
    const float d_amax = int4_symmetric_amax_grad(g, warp_sum(to_inverse), warp_sum(to_scale), RoundLike<T>{});
    for (int64_t i = threadIdx.x % 32; i < n; i += 32) {
      const float v = to_f32(w[i]);
      const float direct = int4_symmetric_partials(v, to_f32(dout[i]), g, RoundLike<T>{}).direct;
      dw[i] = from_f32<T>(direct + amax_share(v, amax, d_amax, ties));
    }
  }
};

// A block of kMxBlock (32) values, one a lane; a NaN anywhere makes the block's scale NaN.
struct Mxfp4Forward {
  template <class T>
  __device__ void operator()(const T* x, T* out, int64_t) const {
    const float v = to_f32(x[threadIdx.x % 32]);
    float amax = fabsf(v);
    for (int off = 16; off > 0; off >>= 1) {
      const float other = __shfl_xor_sync(0xffffffffu, amax, off);
      amax = isnan(amax) || isnan(other) ? NAN : fmaxf(amax, other);
    }
    out[threadIdx.x % 32] = from_f32<T>(mxfp4_fake_quant(v, mxfp4_block_exponent(amax)));
  }
};
static_assert(kMxBlock == 32, "Mxfp4Forward gives each lane of a warp one value of a block");

// A weight row to {-1, 0, 1} times its mean magnitude. The sum in double (lanes, then a shuffle
// tree) as the CPU's, so that both round the same sum to f32: an f32 sum in another order could
// move the scale by an ulp, and with it every weight within an ulp of a level's midpoint.
struct TernaryForward {
  bool straight_through;
  template <class T>
  __device__ void operator()(const T* w, T* out, int64_t n) const {
    double abs_sum = 0.0;
    for (int64_t i = threadIdx.x % 32; i < n; i += 32) abs_sum += fabsf(to_f32(w[i]));
    const float scale = ternary_scale(static_cast<float>(warp_sum(abs_sum)), n, RoundLike<T>{});
    for (int64_t i = threadIdx.x % 32; i < n; i += 32) {
      const float v = to_f32(w[i]);
      const float q = ternary_fake_quant(v, scale, RoundLike<T>{});
      out[i] = from_f32<T>(straight_through ? straight_through_value(v, q, RoundLike<T>{}) : q);
    }
  }
};

struct Int8AbsmaxForward {
  template <class T>
  __device__ void operator()(const T* x, T* out, int64_t n) const {
    float amax;
    int ties;
    span_abs_max(x, n, amax, ties);
    const float scale = int8_absmax_scale(amax, RoundLike<T>{});
    for (int64_t i = threadIdx.x % 32; i < n; i += 32) {
      const float v = to_f32(x[i]);
      out[i] = from_f32<T>(straight_through_value(v, int8_absmax_fake_quant(v, scale, RoundLike<T>{}), RoundLike<T>{}));
    }
  }
};

unsigned warp_blocks(int64_t warps) { return static_cast<unsigned>((warps + kWarpsPerBlock - 1) / kWarpsPerBlock); }

// x's spans of `span` elements (its last dimension for a row), one warp each, on `stream`.
template <class Forward>
void launch_per_span(const char* op, cudaStream_t stream, const Tensor& x, int64_t span, Tensor& out, Forward forward) {
  const int64_t spans = span == 0 ? 0 : x.numel() / span;
  if (spans == 0) return;
  dispatch_float(op, x, [&](auto tag) {
    using T = decltype(tag);
    per_span_forward_kernel<<<warp_blocks(spans), kThreads, 0, stream>>>(x.data<T>(), out.data<T>(), span, spans, forward);
  });
  CUDA_CHECK_OP(op, x, out);
}

template <class Backward>
void launch_per_span(const char* op, cudaStream_t stream, const Tensor& x, const Tensor& dout, int64_t span, Tensor& dx,
                     Backward backward) {
  require_same_dtype(op, x, dout);
  const int64_t spans = span == 0 ? 0 : x.numel() / span;
  if (spans == 0) return;
  dispatch_float(op, x, [&](auto tag) {
    using T = decltype(tag);
    per_span_backward_kernel<<<warp_blocks(spans), kThreads, 0, stream>>>(x.data<T>(), dout.data<T>(), dx.data<T>(),
                                                                           span, spans, backward);
  });
  CUDA_CHECK_OP(op, x, dx);
}

}  // namespace

void CudaBackend::fake_quant_int4_forward(const Tensor& w, int64_t group, Tensor& out) {
  activate();
  launch_per_span("fake_quant_int4", stream_, w, group, out, Int4Forward{});
}

void CudaBackend::fake_quant_int4_backward(const Tensor& w, const Tensor& dout, int64_t group, Tensor& dw) {
  activate();
  launch_per_span("fake_quant_int4 backward", stream_, w, dout, group, dw, Int4Backward{});
}

void CudaBackend::fake_quant_int8_forward(const Tensor& x, Tensor& out) {
  activate();
  launch_per_span("fake_quant_int8", stream_, x, x.size(-1), out, Int8Forward{});
}

void CudaBackend::fake_quant_int8_backward(const Tensor& x, const Tensor& dout, Tensor& dx) {
  activate();
  launch_per_span("fake_quant_int8 backward", stream_, x, dout, x.size(-1), dx, Int8Backward{});
}

void CudaBackend::fake_quant_fp8_rows_forward(const Tensor& x, float lower_bound, Tensor& out) {
  activate();
  launch_per_span("fake_quant_fp8_rows", stream_, x, x.size(-1), out, Fp8RowsForward{lower_bound});
}

void CudaBackend::fake_quant_fp8_rows_backward(const Tensor& x, const Tensor& dout, float lower_bound, Tensor& dx) {
  activate();
  launch_per_span("fake_quant_fp8_rows backward", stream_, x, dout, x.size(-1), dx, Fp8RowsBackward{lower_bound});
}

void CudaBackend::fake_quant_int4_symmetric_forward(const Tensor& w, int64_t group, Tensor& out) {
  activate();
  launch_per_span("fake_quant_int4_symmetric", stream_, w, group, out, Int4SymmetricForward{});
}

void CudaBackend::fake_quant_int4_symmetric_backward(const Tensor& w, const Tensor& dout, int64_t group, Tensor& dw) {
  activate();
  launch_per_span("fake_quant_int4_symmetric backward", stream_, w, dout, group, dw, Int4SymmetricBackward{});
}

void CudaBackend::fake_quant_mxfp4(const Tensor& x, Tensor& out) {
  activate();
  launch_per_span("fake_quant_mxfp4", stream_, x, kMxBlock, out, Mxfp4Forward{});
}

void CudaBackend::fake_quant_ternary(const Tensor& w, bool straight_through, Tensor& out) {
  activate();
  launch_per_span("fake_quant_ternary", stream_, w, w.size(-1), out, TernaryForward{straight_through});
}

void CudaBackend::fake_quant_int8_absmax(const Tensor& x, Tensor& out) {
  activate();
  launch_per_span("fake_quant_int8_absmax", stream_, x, x.size(-1), out, Int8AbsmaxForward{});
}

void CudaBackend::fake_quant_fp8(const Tensor& x, Fp8Format format, Tensor& out) {
  const int64_t n = x.numel();
  if (n == 0) return;
  activate();
  Tensor amax = Tensor::zeros({1}, DType::i32, x.device());  // float bits, 0 = +0.0
  unsigned* bits = reinterpret_cast<unsigned*>(amax.data<int32_t>());
  dispatch_float("fake_quant_fp8", x, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    launch_vec(n, [&](auto width, unsigned blocks) {
      abs_max_kernel<T, width()><<<blocks, kThreads, 0, stream_>>>(xp, n, bits);
      fp8_cast_kernel<T, width()><<<blocks, kThreads, 0, stream_>>>(xp, op, n, bits, fp8_spec(format));
    }, xp, op);
  });
  CUDA_CHECK_OP("fake_quant_fp8", x, out);
}

}  // namespace llm
