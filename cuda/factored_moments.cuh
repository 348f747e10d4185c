// Adafactor's factored running means on the GPU, shared by Adafactor's update and CAME's (its
// second moment and its instability): the CPU's algorithm (engine/cpu/cpu_factored.h), every sum
// in double in a fixed order, so an update is the same run to run.
#pragma once
#include "cuda/cuda_common.cuh"
#include "engine/adafactor_math.h"

namespace llm {
namespace factored {
// Internal to each .cu that includes it: its kernels are not templates all, and would otherwise be
// defined twice (cuda_adafactor.cu, cuda_came.cu).
namespace {

constexpr int64_t kRowsPerChunk = 256;  // column sums: rows per partial sum

// The term a gradient element adds to Adafactor's second moment: g^2 + eps1 of the clipped g.
template <class G>
struct GradSquare {
  const G* grad;
  AdafactorArgs a;
  __device__ float operator()(int64_t i) const { return adafactor_square(adafactor_grad(to_f32(grad[i]), a), a); }
};

// Terms already computed, one per element (CAME's instability).
struct Stored {
  const float* values;
  __device__ float operator()(int64_t i) const { return values[i]; }
};

// A matrix's row means: block r sums its row's terms.
template <class Term>
__global__ void rows_kernel(Term term, float* row, int64_t C, AdafactorArgs rates) {
  __shared__ double scratch[32];
  const int64_t r = blockIdx.x;
  double sum = 0.0;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) sum += term(r * C + c);
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) row[r] = adafactor_average(row[r], static_cast<float>(sum / C), rates);
}

// Partial column sums over chunks of kRowsPerChunk rows: partial (chunks, C).
template <class Term>
__global__ void column_partials_kernel(Term term, double* partial, int64_t R, int64_t C) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, chunk = blockIdx.y;
  if (c >= C) return;
  double sum = 0.0;
  const int64_t end = min(R, (chunk + 1) * kRowsPerChunk);
  for (int64_t r = chunk * kRowsPerChunk; r < end; r++) sum += term(r * C + c);
  partial[chunk * C + c] = sum;
}

__global__ void columns_kernel(const double* partial, float* col, int64_t chunks, int64_t R, int64_t C,
                               AdafactorArgs rates) {
  GRID_STRIDE_LOOP(c, C) {
    double sum = 0.0;
    for (int64_t k = 0; k < chunks; k++) sum += partial[k * C + c];
    col[c] = adafactor_average(col[c], static_cast<float>(sum / R), rates);
  }
}

// *mean = the mean of a matrix's row means (one block).
__global__ void row_mean_kernel(const float* row, int64_t R, float* mean) {
  __shared__ double scratch[32];
  double sum = 0.0;
  for (int64_t r = threadIdx.x; r < R; r += blockDim.x) sum += row[r];
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) *mean = static_cast<float>(sum / R);
}

// A vector's own means.
template <class Term>
__global__ void elements_kernel(Term term, float* v, int64_t n, AdafactorArgs rates) {
  GRID_STRIDE_LOOP(i, n) v[i] = adafactor_average(v[i], term(i), rates);
}

// Element i's scale from the means (col null: a vector's own): rsqrt(row / mean(row)) x rsqrt(col).
__device__ __forceinline__ float scale_at(const float* row, const float* col, float row_mean, int64_t C, int64_t i) {
  if (col == nullptr) return 1.0f / sqrtf(row[i]);
  return (1.0f / sqrtf(row[i / C] / row_mean)) * (1.0f / sqrtf(col[i % C]));
}

// Takes term(i) of n elements into `row` and `col` (col undefined: a vector's per element) at
// `rates`, and a matrix's mean of its row means into *row_mean (device memory).
template <class Term>
void update_means(Term term, Tensor& row, Tensor& col, int64_t n, const AdafactorArgs& rates, float* row_mean,
                  cudaStream_t stream) {
  if (!col.defined()) {
    elements_kernel<<<grid_for(n), kThreads, 0, stream>>>(term, row.data<float>(), n, rates);
    return;
  }
  const int64_t C = col.numel(), R = n / C;
  rows_kernel<<<static_cast<unsigned>(R), kThreads, 0, stream>>>(term, row.data<float>(), C, rates);
  const int64_t chunks = (R + kRowsPerChunk - 1) / kRowsPerChunk;
  // f64 partial sums as pairs of f32 words (the engine has no f64 dtype).
  Tensor partial = Tensor::zeros({2 * chunks * C}, DType::f32, row.device());
  const dim3 grid(static_cast<unsigned>((C + kThreads - 1) / kThreads), static_cast<unsigned>(chunks));
  double* sums = reinterpret_cast<double*>(partial.data<float>());
  column_partials_kernel<<<grid, kThreads, 0, stream>>>(term, sums, R, C);
  columns_kernel<<<grid_for(C), kThreads, 0, stream>>>(sums, col.data<float>(), chunks, R, C, rates);
  row_mean_kernel<<<1, kThreads, 0, stream>>>(row.data<float>(), R, row_mean);
}

// Block partial sums of u(i)^2 (the grid of grid_for(n): the same order on any device).
template <class Update>
__global__ void squares_kernel(Update u, int64_t n, double* partial) {
  __shared__ double scratch[32];
  double sum = 0.0;
  GRID_STRIDE_LOOP(i, n) {
    const double v = u(i);
    sum += v * v;
  }
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = sum;
}

// *divisor = the clip's divisor from the block partials (one block).
__global__ void divisor_kernel(const double* partial, int64_t blocks, int64_t n, float* divisor, AdafactorArgs a) {
  __shared__ double scratch[32];
  double sum = 0.0;
  for (int64_t b = threadIdx.x; b < blocks; b += blockDim.x) sum += partial[b];
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) *divisor = adafactor_divisor(sum, static_cast<double>(n), a);
}

// The clip's divisor of u(i) over n elements into *divisor (device memory).
template <class Update>
void clip_divisor(Update u, int64_t n, const AdafactorArgs& a, float* divisor, Device device, cudaStream_t stream) {
  const unsigned blocks = grid_for(n);
  Tensor squares = Tensor::zeros({2 * int64_t(blocks)}, DType::f32, device);
  double* partial = reinterpret_cast<double*>(squares.data<float>());
  squares_kernel<<<blocks, kThreads, 0, stream>>>(u, n, partial);
  divisor_kernel<<<1, kThreads, 0, stream>>>(partial, blocks, n, divisor, a);
}

// u(i) = scale(i) x g(i): the update before its clip (scalars: the device's row mean).
template <class G>
struct ScaledGrad {
  const G* grad;
  const float *row, *col, *row_mean;
  int64_t C;
  AdafactorArgs a;
  __device__ float operator()(int64_t i) const {
    const float rm = col == nullptr ? 0.0f : *row_mean;
    return scale_at(row, col, rm, C, i) * adafactor_grad(to_f32(grad[i]), a);
  }
};

}  // namespace
}  // namespace factored
}  // namespace llm
