// defines: CudaBackend::sum, add_sum_squares, add_stable_adamw_ratios (deterministic two-pass reductions, f64 accumulation;
// 4 elements a load where aligned; for a sum of squares of many tensors, shared pass-1 launches
// and one second pass for them all)
#include "cuda/cuda_common.cuh"
#include "cuda/vec.cuh"

namespace llm {

namespace {

// Blocks of pass 1 at most: 1024 x 256 threads fill an H100's or H200's SMs.
constexpr int64_t kPartialSums = 1024;

// f64 keeps the total as exact as the CPU's serial f64 loop, at no cost to a memory-bound pass.
template <bool Square, class T>
__device__ __forceinline__ double summand(T x) {
  const double v = to_f32(x);
  return Square ? v * v : v;
}

// Pass 1: each block sums its grid-stride share (x or x^2) into partial[blockIdx.x]. The grid
// is fixed by n (and x's alignment) and so is the in-block tree: the partials are the same
// every run.
template <class T, bool Square>
__global__ void partial_sum_kernel(const T* x, int64_t n, double* partial) {
  __shared__ double shared[32];
  double acc = 0.0;
  GRID_STRIDE_LOOP(i, n) acc += summand<Square>(x[i]);
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// x aligned to its 4-element word (cuda/vec.cuh). The global norm reads every gradient each
// step: one element a load, this pass reached 27% of an H200's HBM bandwidth; a word a load, 25%
// at an (8192, 2048) f32 gradient and 38% over a block's nine (2026-12-04-gpu-run.md), each
// thread waiting on its load before it asks for the next. So each thread asks for kInFlight words
// at once, one running sum each, added in a fixed order at the end: the same bits every run.
// Returns block `block`'s sum of `blocks` over x (every thread gets it). partial_sum4_kernel is held
// to 32 registers (ptxas: no spills), so that kPartialSums blocks are one wave on 132 SMs.
constexpr int kInFlight = 4;
template <class T, bool Square>
__device__ __forceinline__ double block_partial_sum4(const T* x, int64_t n, unsigned block, unsigned blocks,
                                                     double* shared) {
  double acc[kInFlight] = {};
  const int64_t groups = n / 4, stride = int64_t(blocks) * blockDim.x;
  if (const int64_t tail = tail_of<4>(n, block); tail >= 0) acc[0] = summand<Square>(x[tail]);
  int64_t group = int64_t(block) * blockDim.x + threadIdx.x;
  for (; group + (kInFlight - 1) * stride < groups; group += kInFlight * stride) {
    Vec4<T> v[kInFlight];
#pragma unroll
    for (int k = 0; k < kInFlight; k++) v[k] = load4(x, group + k * stride);
#pragma unroll
    for (int k = 0; k < kInFlight; k++)
      for (int j = 0; j < 4; j++) acc[k] += summand<Square>(v[k].v[j]);
  }
  for (; group < groups; group += stride) {
    const Vec4<T> v = load4(x, group);
    for (int j = 0; j < 4; j++) acc[0] += summand<Square>(v.v[j]);
  }
  static_assert(kInFlight == 4, "the running sums' fixed order below");
  return block_sum((acc[0] + acc[1]) + (acc[2] + acc[3]), shared);
}

template <class T, bool Square>
__global__ void __launch_bounds__(kThreads, 8) partial_sum4_kernel(const T* x, int64_t n, double* partial) {
  __shared__ double shared[32];
  const double total = block_partial_sum4<T, Square>(x, n, blockIdx.x, gridDim.x, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// Up to kBatchTensors aligned tensors of one dtype in one launch: tensor i's blocks are
// first_block[i] .. first_block[i + 1] - 1 of the grid, as many as its own launch would have, and
// write the same partials in the same places. The global norm sums about 150 gradients at
// llama3-1b, a third of them norm weights of a few thousand elements: one launch each cost more
// than their bytes. Passed by value (kernel parameters, 1.3 KB).
constexpr int kBatchTensors = 64;
template <class T>
struct TensorBatch {
  const T* x[kBatchTensors];
  int64_t n[kBatchTensors];
  unsigned first_block[kBatchTensors + 1];
  int count;
};

// Its blocks are many waves (every gradient's), so it may take the registers of 6 blocks an SM.
template <class T>
__global__ void __launch_bounds__(kThreads, 6) batch_sum_squares4_kernel(const __grid_constant__ TensorBatch<T> batch,
                                                                         double* partial) {
  __shared__ double shared[32];
  int i = 0;
  while (blockIdx.x >= batch.first_block[i + 1]) i++;
  const unsigned first = batch.first_block[i];
  const double total =
      block_partial_sum4<T, true>(batch.x[i], batch.n[i], blockIdx.x - first, batch.first_block[i + 1] - first, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// Pass 2: one block of kFinalThreads adds the partials in a fixed order, into out_f32, or onto
// *add_f64. Four running sums a thread keep four loads in flight: the global norm's pass 2 reads
// about 10^5 partials (a thousand for each large gradient).
constexpr int kFinalThreads = 1024;
__global__ void final_sum_kernel(const double* partial, int count, float* out_f32,
                                 double* add_f64) {
  __shared__ double shared[32];
  double sums[4] = {};
  int i = threadIdx.x;
  for (; i + 3 * int(blockDim.x) < count; i += 4 * blockDim.x)
#pragma unroll
    for (int j = 0; j < 4; j++) sums[j] += partial[i + j * blockDim.x];
  for (; i < count; i += blockDim.x) sums[0] += partial[i];
  const double acc = block_sum((sums[0] + sums[1]) + (sums[2] + sums[3]), shared);
  if (threadIdx.x == 0) {
    if (out_f32) *out_f32 = static_cast<float>(acc);
    if (add_f64) *add_f64 += acc;
  }
}

// The blocks of partial_sum4_kernel over n elements, and of each tensor's share of a batch: the
// same count either way, so a tensor's partials do not depend on whether it was batched.
unsigned sum4_blocks(int64_t n) { return grid_for(n / 4, kPartialSums); }

// Pass 1 into `partial` (f64 words, one per block); returns the block count. The grid depends on
// n and on x's alignment alone: the same tensor sums in the same order every run.
template <bool Square>
unsigned launch_partial_sums(const char* op, const Tensor& x, double* partial, cudaStream_t stream) {
  const int64_t n = x.numel();
  unsigned blocks = 0;
  dispatch_float(op, x, [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data<T>();
    if (aligned_to_words<4>(p)) {
      blocks = sum4_blocks(n);
      partial_sum4_kernel<T, Square><<<blocks, kThreads, 0, stream>>>(p, n, partial);
    } else {
      blocks = grid_for(n, kPartialSums);
      partial_sum_kernel<T, Square><<<blocks, kThreads, 0, stream>>>(p, n, partial);
    }
  });
  return blocks;
}

// Pass 1 of the squares of xs[i] and the tensors after it that batch with it (TensorBatch: the
// same float dtype, each on its 4-element word, kBatchTensors at most) in one launch, into
// `partial`, with the blocks each one's own launch would have; moves i past them and returns
// their blocks. 0 where fewer than two batch.
unsigned launch_batch(const std::vector<Tensor>& xs, size_t& i, double* partial, cudaStream_t stream) {
  const DType dtype = xs[i].dtype();
  if (dtype != DType::f32 && dtype != DType::bf16) return 0;
  unsigned blocks = 0;
  dispatch_float("sum_squares", xs[i], [&](auto tag) {
    using T = decltype(tag);
    TensorBatch<T> batch{};
    size_t end = i;
    for (; end < xs.size() && batch.count < kBatchTensors && xs[end].dtype() == dtype; end++) {
      const T* x = xs[end].data<T>();
      if (!aligned_to_words<4>(x)) break;
      batch.x[batch.count] = x;
      batch.n[batch.count] = xs[end].numel();
      batch.first_block[batch.count] = blocks;
      blocks += sum4_blocks(xs[end].numel());
      batch.count++;
    }
    if (batch.count < 2) {
      blocks = 0;
      return;
    }
    batch.first_block[batch.count] = blocks;
    batch_sum_squares4_kernel<T><<<blocks, kThreads, 0, stream>>>(batch, partial);
    CUDA_CHECK_OP("sum_squares", xs[i]);
    i = end;
  });
  return blocks;
}

// StableAdamW's ratios (engine/adamw_math.h), pass 1 as partial_sum_kernel's.
__global__ void partial_stable_ratio_kernel(const float* g, const float* v, int64_t n, StableRmsArgs args,
                                            double* partial) {
  __shared__ double shared[32];
  double acc = 0.0;
  GRID_STRIDE_LOOP(i, n) acc += stable_adamw_ratio(g[i], v[i], args);
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

}  // namespace

void CudaBackend::add_stable_adamw_ratios(const Tensor& grad, const Tensor& v, const StableRmsArgs& args,
                                          Tensor& acc) {
  require_f64_accumulator("add_stable_adamw_ratios", acc);
  LLM_CHECK(grad.dtype() == DType::f32 && v.dtype() == DType::f32 && grad.numel() == v.numel(),
            "add_stable_adamw_ratios: " + grad.str() + " and " + v.str());
  activate();
  Tensor partial = scratch({2 * kPartialSums}, DType::f32);  // f64 words
  double* p = static_cast<double*>(partial.data_ptr());
  const unsigned blocks = grid_for(grad.numel(), kPartialSums);
  partial_stable_ratio_kernel<<<blocks, kThreads, 0, stream_>>>(grad.data<float>(), v.data<float>(), grad.numel(),
                                                                args, p);
  final_sum_kernel<<<1, kFinalThreads, 0, stream_>>>(p, blocks, nullptr, static_cast<double*>(acc.data_ptr()));
  CUDA_CHECK_OP("add_stable_adamw_ratios", grad, v, acc);
}

void CudaBackend::sum(const Tensor& x, Tensor& out) {
  LLM_CHECK(out.dtype() == DType::f32 && out.numel() == 1, "sum into " + out.str());
  activate();
  Tensor partial = scratch({2 * kPartialSums}, DType::f32);  // f64 words
  double* p = static_cast<double*>(partial.data_ptr());
  const unsigned blocks = launch_partial_sums<false>("sum", x, p, stream_);
  final_sum_kernel<<<1, kFinalThreads, 0, stream_>>>(p, blocks, out.data<float>(), nullptr);
  CUDA_CHECK_OP("sum", x, out);
}

// Each tensor's pass 1 into its own run of one partial buffer, then one pass 2 over them all: the
// global gradient norm sums about 150 tensors at llama3-1b, and a one-block pass 2 for each would
// be as many launches that each hold one SM of 132 for their few microseconds. Runs of aligned
// tensors of one dtype share pass 1's launch (TensorBatch); the partials lie in xs' order either way.
void CudaBackend::add_sum_squares(const std::vector<Tensor>& xs, Tensor& acc) {
  require_f64_accumulator("add_sum_squares", acc);
  if (xs.empty()) return;
  activate();
  Tensor partial = scratch({2 * kPartialSums * static_cast<int64_t>(xs.size())}, DType::f32);
  double* p = static_cast<double*>(partial.data_ptr());  // f64 words
  unsigned blocks = 0;
  for (size_t i = 0; i < xs.size();) {
    const unsigned batched = launch_batch(xs, i, p + blocks, stream_);
    if (batched > 0) {
      blocks += batched;
      continue;  // launch_batch moved i past the tensors it took
    }
    blocks += launch_partial_sums<true>("sum_squares", xs[i], p + blocks, stream_);
    CUDA_CHECK_OP("sum_squares", xs[i]);
    i++;
  }
  final_sum_kernel<<<1, kFinalThreads, 0, stream_>>>(p, blocks, nullptr,
                                                     static_cast<double*>(acc.data_ptr()));
  CUDA_CHECK_OP("sum_squares", acc);
}

}  // namespace llm
