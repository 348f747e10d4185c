// defines: CudaBackend::scale_columns, scale_rows, column_dot, row_inverse_norms (DoRA's per-output-feature
// scaling; f32 math on f32 or bf16 storage, reductions in a fixed order)
#include <algorithm>

#include "cuda/vec.cuh"

namespace llm {

namespace {

// Row chunks of column_dot: a function of the row count only, so the summation order is the same
// on every run and every GPU (as rmsnorm's dweight).
constexpr int64_t kRowChunks = 128;

// out = x * s, s indexed by each element's row (per_row) or column; W elements of one row a unit
// (launched with W > 1 only when rows are whole words: one division a word, not one an element).
template <int W, class T>
__global__ void scale_lines_kernel(const T* x, const float* s, T* out, int64_t n, int64_t C, bool per_row) {
  GRID_STRIDE_LOOP(unit, n / W) {
    const int64_t first = unit * W, row = first / C, col = first - row * C;
    const VecN<T, W> v = load_vec<W>(x, unit);
    VecN<T, W> y;
#pragma unroll
    for (int j = 0; j < W; j++) y.v[j] = from_f32<T>(to_f32(v.v[j]) * s[per_row ? row : col + j]);
    store_vec<W>(out, unit, y);
  }
}

// partial[chunk, c] = sum over the chunk's rows, in order, of a * b. grid: (column blocks, chunks);
// consecutive threads read consecutive columns of a row.
template <class T>
__global__ void column_dot_partial_kernel(const T* a, const T* b, float* partial, int64_t N,
                                          int64_t C, int64_t rows_per_chunk) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  const int64_t begin = blockIdx.y * rows_per_chunk;
  const int64_t end = min(N, begin + rows_per_chunk);
  float acc = 0.0f;
  for (int64_t i = begin; i < end; i++) acc += to_f32(a[i * C + c]) * to_f32(b[i * C + c]);
  partial[blockIdx.y * C + c] = acc;
}

__global__ void column_dot_final_kernel(const float* partial, int64_t chunks, float* out, int64_t C) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  float acc = 0.0f;
  for (int64_t k = 0; k < chunks; k++) acc += partial[k * C + c];
  out[c] = acc;
}

// One block per row, W elements a load (rows of whole 16-byte words) or one: each thread's sum
// of squares in its order, then the block's fixed tree (block_sum).
template <class T, int W>
__global__ void row_inverse_norms_kernel(const T* w, float* out, int64_t C) {
  __shared__ float shared[32];
  const T* row = w + blockIdx.x * C;
  float ss = 0.0f;
  for (int64_t unit = threadIdx.x; unit < C / W; unit += blockDim.x) {
    const VecN<T, W> v = load_vec<W>(row, unit);
#pragma unroll
    for (int j = 0; j < W; j++) {
      const float x = to_f32(v.v[j]);
      ss += x * x;
    }
  }
  ss = block_sum(ss, shared);
  if (threadIdx.x == 0) out[blockIdx.x] = rsqrtf(ss);
}

}  // namespace

void CudaBackend::scale_lines(const char* op, const Tensor& x, const Tensor& s, Tensor& out, bool per_row) {
  require_same_dtype(op, x, out);
  const int64_t n = x.numel();
  if (n == 0) return;
  activate();
  const int64_t C = x.size(-1);
  dispatch_float(op, x, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* op_out = out.data<T>();
    with_row_width<wide_width<T>()>(C, [&](auto width) {
      scale_lines_kernel<width()><<<grid_for(n / width()), kThreads, 0, stream_>>>(
          xp, s.data<float>(), op_out, n, C, per_row);
    }, xp, static_cast<const T*>(op_out));
  });
  CUDA_CHECK_OP(op, x, s, out);
}

void CudaBackend::scale_columns(const Tensor& x, const Tensor& s, Tensor& out) {
  scale_lines("scale_columns", x, s, out, false);
}

void CudaBackend::scale_rows(const Tensor& x, const Tensor& s, Tensor& out) { scale_lines("scale_rows", x, s, out, true); }

void CudaBackend::column_dot(const Tensor& a, const Tensor& b, Tensor& out) {
  require_same_dtype("column_dot", a, b);
  const int64_t C = a.size(-1);
  if (C == 0) return;
  const int64_t N = a.numel() / C;
  activate();
  const int64_t chunks = std::max<int64_t>(1, std::min(N, kRowChunks));
  const int64_t rows_per_chunk = (N + chunks - 1) / chunks;
  Tensor partial = scratch({chunks, C}, DType::f32);
  const unsigned column_blocks = static_cast<unsigned>((C + kThreads - 1) / kThreads);
  dispatch_float("column_dot", a, [&](auto tag) {
    using T = decltype(tag);
    column_dot_partial_kernel<<<dim3(column_blocks, chunks), kThreads, 0, stream_>>>(
        a.data<T>(), b.data<T>(), partial.data<float>(), N, C, rows_per_chunk);
  });
  column_dot_final_kernel<<<column_blocks, kThreads, 0, stream_>>>(partial.data<float>(), chunks,
                                                                   out.data<float>(), C);
  CUDA_CHECK_OP("column_dot", a, b, out);
}

void CudaBackend::row_inverse_norms(const Tensor& w, Tensor& out) {
  const int64_t C = w.size(-1), R = w.numel() / C;
  if (R == 0) return;
  activate();
  dispatch_float("row_inverse_norms", w, [&](auto tag) {
    using T = decltype(tag);
    const T* wp = w.data<T>();
    with_row_width<wide_width<T>()>(C, [&](auto width) {
      row_inverse_norms_kernel<T, width()><<<R, kThreads, 0, stream_>>>(wp, out.data<float>(), C);
    }, wp);
  });
  CUDA_CHECK_OP("row_inverse_norms", w, out);
}

}  // namespace llm
