// defines: CudaBackend::sum, add_sum_squares (deterministic two-pass reductions, f64 accumulation)
#include "cuda/cuda_common.cuh"

namespace llm {

namespace {

// Pass 1: each block sums its grid-stride share (x or x^2) into partial[blockIdx.x]. The grid
// depends on n alone and the in-block tree is fixed, so the partials are the same every run.
// f64 keeps the total as exact as the CPU's serial f64 loop, at no cost to a memory-bound pass.
template <class T, bool Square>
__global__ void partial_sum_kernel(const T* x, int64_t n, double* partial) {
  __shared__ double shared[32];
  double acc = 0.0;
  GRID_STRIDE_LOOP(i, n) {
    const double v = to_f32(x[i]);
    acc += Square ? v * v : v;
  }
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// Pass 2: one block adds the partials in a fixed order, into out_f32, or onto *add_f64.
__global__ void final_sum_kernel(const double* partial, int count, float* out_f32,
                                 double* add_f64) {
  __shared__ double shared[32];
  double acc = 0.0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) {
    if (out_f32) *out_f32 = static_cast<float>(acc);
    if (add_f64) *add_f64 += acc;
  }
}

}  // namespace

void CudaBackend::sum(const Tensor& x, Tensor& out) {
  LLM_CHECK(out.dtype() == DType::f32 && out.numel() == 1, "sum into " + out.str());
  activate();
  const int64_t n = x.numel();
  const unsigned blocks = grid_for(n, 1024);
  Tensor partial = scratch({2 * int64_t(blocks)}, DType::f32);  // f64 words
  double* p = static_cast<double*>(partial.data_ptr());
  dispatch_float("sum", x, [&](auto tag) {
    using T = decltype(tag);
    partial_sum_kernel<T, false><<<blocks, kThreads, 0, stream_>>>(x.data<T>(), n, p);
  });
  final_sum_kernel<<<1, kThreads, 0, stream_>>>(p, blocks, out.data<float>(), nullptr);
  CUDA_CHECK_OP("sum", x, out);
}

void CudaBackend::add_sum_squares(const Tensor& x, Tensor& acc) {
  require_f64_accumulator("add_sum_squares", acc);
  activate();
  const int64_t n = x.numel();
  const unsigned blocks = grid_for(n, 1024);
  Tensor partial = scratch({2 * int64_t(blocks)}, DType::f32);  // f64 words
  double* p = static_cast<double*>(partial.data_ptr());
  dispatch_float("sum_squares", x, [&](auto tag) {
    using T = decltype(tag);
    partial_sum_kernel<T, true><<<blocks, kThreads, 0, stream_>>>(x.data<T>(), n, p);
  });
  final_sum_kernel<<<1, kThreads, 0, stream_>>>(p, blocks, nullptr,
                                                static_cast<double*>(acc.data_ptr()));
  CUDA_CHECK_OP("sum_squares", x, acc);
}

}  // namespace llm
