// defines: CudaBackend::adafactor (engine/adafactor_math.h; the CPU's algorithm, every sum in a
// fixed order, so the update is the same run to run)
#include "cuda/cuda_common.cuh"

namespace llm {

namespace {

constexpr int64_t kRowsPerChunk = 256;  // column sums: rows per partial sum

// A matrix's row averages: block r sums its row's squared terms.
template <class G>
__global__ void adafactor_rows_kernel(const G* grad, float* row, int64_t C, AdafactorArgs a) {
  __shared__ double scratch[32];
  const int64_t r = blockIdx.x;
  double sum = 0.0;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) sum += adafactor_square(adafactor_grad(to_f32(grad[r * C + c]), a), a);
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) row[r] = adafactor_average(row[r], static_cast<float>(sum / C), a);
}

// Partial column sums of the squared terms over chunks of kRowsPerChunk rows: partial (chunks, C).
template <class G>
__global__ void adafactor_column_partials_kernel(const G* grad, double* partial, int64_t R, int64_t C, AdafactorArgs a) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, chunk = blockIdx.y;
  if (c >= C) return;
  double sum = 0.0;
  const int64_t end = min(R, (chunk + 1) * kRowsPerChunk);
  for (int64_t r = chunk * kRowsPerChunk; r < end; r++) sum += adafactor_square(adafactor_grad(to_f32(grad[r * C + c]), a), a);
  partial[chunk * C + c] = sum;
}

__global__ void adafactor_columns_kernel(const double* partial, float* col, int64_t chunks, int64_t R, int64_t C,
                                         AdafactorArgs a) {
  GRID_STRIDE_LOOP(c, C) {
    double sum = 0.0;
    for (int64_t k = 0; k < chunks; k++) sum += partial[k * C + c];
    col[c] = adafactor_average(col[c], static_cast<float>(sum / R), a);
  }
}

// scalars[0] = the mean of a matrix's row averages (one block).
__global__ void adafactor_row_mean_kernel(const float* row, int64_t R, float* scalars) {
  __shared__ double scratch[32];
  double sum = 0.0;
  for (int64_t r = threadIdx.x; r < R; r += blockDim.x) sum += row[r];
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) scalars[0] = static_cast<float>(sum / R);
}

// A vector's own averages.
template <class G>
__global__ void adafactor_elements_kernel(const G* grad, float* v, int64_t n, AdafactorArgs a) {
  GRID_STRIDE_LOOP(i, n) v[i] = adafactor_average(v[i], adafactor_square(adafactor_grad(to_f32(grad[i]), a), a), a);
}

// u, the update before its clip, of element i (col null: a vector's).
template <class G>
__device__ float adafactor_update(const G* grad, const float* row, const float* col, float row_mean, int64_t C,
                                  int64_t i, const AdafactorArgs& a) {
  const float g = adafactor_grad(to_f32(grad[i]), a);
  if (col == nullptr) return (1.0f / sqrtf(row[i])) * g;
  const float factor = (1.0f / sqrtf(row[i / C] / row_mean)) * (1.0f / sqrtf(col[i % C]));
  return factor * g;
}

// Block partial sums of u^2 (the grid of grid_for(n): the same order on any device).
template <class G>
__global__ void adafactor_squares_kernel(const G* grad, const float* row, const float* col, const float* scalars,
                                         int64_t n, int64_t C, double* partial, AdafactorArgs a) {
  __shared__ double scratch[32];
  double sum = 0.0;
  GRID_STRIDE_LOOP(i, n) {
    const double u = adafactor_update(grad, row, col, scalars[0], C, i, a);
    sum += u * u;
  }
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = sum;
}

// scalars[1] = the clip's divisor (one block).
__global__ void adafactor_divisor_kernel(const double* partial, int64_t blocks, int64_t n, float* scalars,
                                         AdafactorArgs a) {
  __shared__ double scratch[32];
  double sum = 0.0;
  for (int64_t b = threadIdx.x; b < blocks; b += blockDim.x) sum += partial[b];
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) scalars[1] = adafactor_divisor(sum, static_cast<double>(n), a);
}

template <class G>
__global__ void adafactor_apply_kernel(float* param, const G* grad, const float* row, const float* col,
                                       const float* scalars, int64_t n, int64_t C, AdafactorArgs a) {
  GRID_STRIDE_LOOP(i, n) param[i] = adafactor_apply(param[i], adafactor_update(grad, row, col, scalars[0], C, i, a),
                                                    scalars[1], a);
}

}  // namespace

void CudaBackend::adafactor(Tensor& param, const Tensor& grad, Tensor& row, Tensor& col, const AdafactorArgs& args) {
  LLM_CHECK(param.dtype() == DType::f32 && row.dtype() == DType::f32 && (!col.defined() || col.dtype() == DType::f32),
            "adafactor on CUDA keeps f32 weights and averages; got param " + param.str() + ", row " + row.str());
  const int64_t n = param.numel(), C = col.defined() ? col.numel() : 1, R = n / C;
  LLM_CHECK(grad.numel() == n && (col.defined() ? row.numel() * C == n : row.numel() == n),
            "adafactor: grad " + grad.str() + ", row " + row.str() + " for " + param.str());
  if (n == 0) return;
  activate();
  const Device d = param.device();
  Tensor scalars = Tensor::zeros({2}, DType::f32, d);  // the row mean, the clip's divisor
  const unsigned blocks = grid_for(n);
  // f64 partial sums as pairs of f32 words (the engine has no f64 dtype).
  Tensor squares = Tensor::zeros({2 * int64_t(blocks)}, DType::f32, d);
  float* col_ptr = col.defined() ? col.data<float>() : nullptr;
  dispatch_float("adafactor", grad, [&](auto tag) {
    using G = decltype(tag);
    const G* g = grad.data<G>();
    if (col.defined()) {
      adafactor_rows_kernel<<<static_cast<unsigned>(R), kThreads, 0, stream_>>>(g, row.data<float>(), C, args);
      const int64_t chunks = (R + kRowsPerChunk - 1) / kRowsPerChunk;
      Tensor partial = Tensor::zeros({2 * chunks * C}, DType::f32, d);
      const dim3 grid(static_cast<unsigned>((C + kThreads - 1) / kThreads), static_cast<unsigned>(chunks));
      adafactor_column_partials_kernel<<<grid, kThreads, 0, stream_>>>(
          g, reinterpret_cast<double*>(partial.data<float>()), R, C, args);
      adafactor_columns_kernel<<<grid_for(C), kThreads, 0, stream_>>>(reinterpret_cast<const double*>(partial.data<float>()),
                                                                      col_ptr, chunks, R, C, args);
      adafactor_row_mean_kernel<<<1, kThreads, 0, stream_>>>(row.data<float>(), R, scalars.data<float>());
    } else {
      adafactor_elements_kernel<<<blocks, kThreads, 0, stream_>>>(g, row.data<float>(), n, args);
    }
    double* partial_squares = reinterpret_cast<double*>(squares.data<float>());
    adafactor_squares_kernel<<<blocks, kThreads, 0, stream_>>>(g, row.data<float>(), col_ptr, scalars.data<float>(), n,
                                                               C, partial_squares, args);
    adafactor_divisor_kernel<<<1, kThreads, 0, stream_>>>(partial_squares, blocks, n, scalars.data<float>(), args);
    adafactor_apply_kernel<<<blocks, kThreads, 0, stream_>>>(param.data<float>(), g, row.data<float>(), col_ptr,
                                                             scalars.data<float>(), n, C, args);
  });
  CUDA_CHECK_OP("adafactor", param, grad, row);
}

}  // namespace llm
