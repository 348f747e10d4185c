// defines: CudaBackend::cross_entropy_forward (per-row logsumexp in f32 in one pass, deterministic
// mean over counted rows), cross_entropy_backward (softmax minus one-hot, scaled by dloss /
// count), topk_entropy_weights (EAFT's per-token weights and its weighted mean loss),
// target_prob_weights (DFT's), argmax_hits (an accuracy's count), softmax_stats (each row's
// entropy and mean logit)
//
// The lm_head loss streams 128256 logits a token through the first two, twice per step: they
// move a 16-byte word a load where the rows allow (cuda/vec.cuh). One element a load (and two passes
// for the logsumexp), the forward's row pass read at about 14% of an H200's HBM bandwidth
// (bench/results/2026-11-30-gpu-run.md: the fused loss's forward took 6.4 ms at 4096 tokens,
// against about 3 for its GEMM).
#include <algorithm>

#include "cuda/cuda_common.cuh"
#include "cuda/vec.cuh"
#include "engine/argmax_order.h"

namespace llm {

namespace {

// A running logsumexp: max m and sum s of exp(x - m) over the values seen so far.
struct OnlineLse {
  float m = -INFINITY, s = 0.0f;
  // Takes `count` values at once: one rescale for the group, not one per value.
  __device__ __forceinline__ void add(const float* x, int count) {
    float top = m;
    for (int j = 0; j < count; j++) top = fmaxf(top, x[j]);  // fmaxf passes over a NaN
    if (top == -INFINITY) {  // nothing but -inf yet: the sum stays 0, or NaN once a NaN came
      for (int j = 0; j < count; j++)
        if (x[j] != x[j]) s = x[j];
      return;
    }
    s *= expf(m - top);  // exp(-inf) = 0 on the first finite group; a NaN in x reaches s below
    for (int j = 0; j < count; j++) s += expf(x[j] - top);
    m = top;
  }
  // The whole block's: every thread gets lse = M + log(sum of s x exp(m - M)).
  __device__ __forceinline__ float block_lse(float* shared) const {
    const float top = block_max(m, shared);
    const float mine = top == -INFINITY ? s : s * expf(m - top);  // there s is 0, or NaN
    return top + logf(block_sum(mine, shared));
  }
};

// One block per row: lse = log(sum(exp(x))) in one pass over the row, row_loss = lse - x[target],
// 0 when the target is ignored or outside [0, V) (check_ids reports that one; here it is not
// read). W elements a load: a 16-byte word (8 bf16, 4 f32) where every row starts on one (V a
// multiple of W and an aligned base), else 1. Two words are loaded before either is used, so each
// thread keeps 32 bytes in flight; with 8 bytes a load (4 bf16) this pass read at about half of
// an H200's HBM bandwidth (0.23 ms for 2048 rows of 128256 bf16 logits, 2026-12-04-gpu-run.md).
template <class T, int W>
__global__ void cross_entropy_rows_kernel(const T* logits, const int32_t* targets, int64_t V,
                                          int ignore_index, float* lse, float* row_loss) {
  __shared__ float shared[32];
  const T* row = logits + blockIdx.x * V;
  OnlineLse acc;
  const int64_t units = V / W;
  int64_t u = threadIdx.x;
  for (; u + blockDim.x < units; u += 2 * blockDim.x) {
    const VecN<T, W> a = load_vec<W>(row, u), b = load_vec<W>(row, u + blockDim.x);
    float x[2 * W];
    for (int j = 0; j < W; j++) {
      x[j] = to_f32(a.v[j]);
      x[W + j] = to_f32(b.v[j]);
    }
    acc.add(x, 2 * W);
  }
  if (u < units) {
    const VecN<T, W> a = load_vec<W>(row, u);
    float x[W];
    for (int j = 0; j < W; j++) x[j] = to_f32(a.v[j]);
    acc.add(x, W);
  }
  const float l = acc.block_lse(shared);
  if (threadIdx.x == 0) {
    lse[blockIdx.x] = l;
    const int32_t t = targets[blockIdx.x];
    row_loss[blockIdx.x] = t == ignore_index || t < 0 || t >= V ? 0.0f : l - to_f32(row[t]);
  }
}

// One block: loss = sum(row_loss) / count in a fixed order (f64), 0 when every row is ignored.
__global__ void cross_entropy_mean_kernel(const float* row_loss, int64_t N, const int32_t* info,
                                          float* loss) {
  __shared__ double shared[32];
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) acc += row_loss[i];
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) *loss = info[0] > 0 ? static_cast<float>(acc / info[0]) : 0.0f;
}

// dlogits = (softmax - onehot(target)) * dloss / count on counted rows, 0 on ignored ones.
__device__ __forceinline__ float cross_entropy_grad(float x, int64_t j, int32_t t, bool counted, float lse, float g) {
  if (!counted) return 0.0f;
  const float d = g * expf(x - lse);
  return j == t ? d - g : d;
}

// grid: (rows, blocks of kThreads words of W elements), W as cross_entropy_rows_kernel's.
template <class T, int W>
__global__ void cross_entropy_backward_kernel(const T* logits, const int32_t* targets,
                                              const float* lse, const float* dloss,
                                              const int32_t* info, int64_t V, int ignore_index,
                                              T* dlogits) {
  const int64_t i = blockIdx.x, unit = blockIdx.y * int64_t(blockDim.x) + threadIdx.x;
  if (unit >= V / W) return;
  const int32_t t = targets[i];
  const bool counted = t != ignore_index && t >= 0 && t < V;
  const float g = info[0] > 0 ? dloss[0] / static_cast<float>(info[0]) : 0.0f, l = lse[i];
  const VecN<T, W> x = load_vec<W>(logits + i * V, unit);
  VecN<T, W> d;
  for (int j = 0; j < W; j++) d.v[j] = from_f32<T>(cross_entropy_grad(to_f32(x.v[j]), W * unit + j, t, counted, l, g));
  store_vec<W>(dlogits + i * V, unit, d);
}

// EAFT, one block per row. Each thread keeps its k largest logits (descending, in registers or
// local memory); k rounds of a block max then pick the row's k largest (a tie goes to the lowest
// thread, and only its entry moves on, so equal values are all counted as torch.topk counts them).
// Thread 0 then forms the softmax over them, its entropy with the 1e-10 inside the log, and
// the power; row_loss = weight x (lse - logits[target]) on counted rows, else 0.
template <class T>
__global__ void topk_entropy_rows_kernel(const T* logits, const int32_t* targets, const float* lse, int64_t V,
                                         int k, float alpha, int ignore_index, float* weights, float* row_loss) {
  __shared__ float shared[32];
  __shared__ float chosen[kMaxEntropyTopK];
  __shared__ int winner;
  const T* row = logits + blockIdx.x * V;
  float top[kMaxEntropyTopK];
  int n = 0;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
    const float v = to_f32(row[j]);
    if (n == k && v <= top[k - 1]) continue;
    int at = n < k ? n++ : k - 1;  // insertion: shift the smaller ones down
    while (at > 0 && top[at - 1] < v) {
      top[at] = top[at - 1];
      at--;
    }
    top[at] = v;
  }
  int head = 0;
  for (int r = 0; r < k; r++) {
    const float mine = head < n ? top[head] : -INFINITY;
    const float best = block_max(mine, shared);
    if (threadIdx.x == 0) winner = blockDim.x;
    __syncthreads();
    if (mine == best) atomicMin(&winner, static_cast<int>(threadIdx.x));
    __syncthreads();
    if (static_cast<int>(threadIdx.x) == winner) {
      chosen[r] = mine;
      head++;
    }
    __syncthreads();
  }
  if (threadIdx.x != 0) return;
  float sum = 0.0f;
  for (int j = 0; j < k; j++) sum += expf(chosen[j] - chosen[0]);
  float entropy = 0.0f;
  for (int j = 0; j < k; j++) {
    const float p = expf(chosen[j] - chosen[0]) / sum;
    entropy -= p * logf(p + 1e-10f);
  }
  const float w = powf(entropy, alpha);
  weights[blockIdx.x] = w;
  const int32_t t = targets[blockIdx.x];
  row_loss[blockIdx.x] = t == ignore_index || t < 0 || t >= V ? 0.0f : w * (lse[blockIdx.x] - to_f32(row[t]));
}

// One thread per row: DFT's weight, the probability of the row's target, and its weighted loss.
template <typename T>
__global__ void target_prob_rows_kernel(const T* logits, const int32_t* targets, const float* lse, int64_t N,
                                        int64_t V, int ignore_index, float* weights, float* row_loss) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= N) return;
  const int32_t t = targets[i];
  if (t == ignore_index || t < 0 || t >= V) {
    weights[i] = 0.0f;
    row_loss[i] = 0.0f;
    return;
  }
  const float token_loss = lse[i] - to_f32(logits[i * V + t]);
  const float w = expf(-token_loss);
  weights[i] = w;
  row_loss[i] = w * token_loss;
}

// One block per row: the row is a hit when no entry precedes its target in argmax's order
// (engine/argmax_order.h); one barrier-wide OR gathers the threads' findings.
template <class T>
__global__ void argmax_hits_kernel(const T* logits, const int32_t* targets, int64_t V, int ignore_index, float* hits) {
  const T* row = logits + blockIdx.x * V;
  const int32_t t = targets[blockIdx.x];
  const bool counted = t != ignore_index && t >= 0 && t < V;
  bool beaten = !counted;
  if (counted) {
    const float target = to_f32(row[t]);
    for (int64_t j = threadIdx.x; j < V && !beaten; j += blockDim.x)
      beaten = argmax_precedes(to_f32(row[j]), j, target, t);
  }
  beaten = __syncthreads_or(beaten);
  if (threadIdx.x == 0) hits[blockIdx.x] = beaten ? 0.0f : 1.0f;
}

// One block per row: sum_v p_v z_v and sum_v z_v in f32 over the block's threads, each summed
// in block_sum's fixed order (bit-identical run to run).
template <class T>
__global__ void softmax_stats_kernel(const T* logits, const float* lse, int64_t V, float* entropy, float* mean_logit) {
  __shared__ float shared[32];
  const T* row = logits + blockIdx.x * V;
  const float l = lse[blockIdx.x];
  float expected = 0.0f, total = 0.0f;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
    const float z = to_f32(row[j]);
    const float p = expf(z - l);
    if (p > 0.0f) expected += p * z;  // p = 0 (a logit of -inf) adds 0, not 0 x -inf
    total += z;
  }
  expected = block_sum(expected, shared);
  total = block_sum(total, shared);
  if (threadIdx.x == 0) {
    entropy[blockIdx.x] = l - expected;
    mean_logit[blockIdx.x] = total / static_cast<float>(V);
  }
}

}  // namespace

template <class LaunchRows>
void CudaBackend::mean_row_loss(const char* op, const Tensor& logits, const Tensor& targets, int ignore_index,
                                Tensor& loss, LaunchRows&& launch_rows) {
  const int64_t N = logits.size(0);
  activate();
  Tensor info = scratch({1}, DType::i32);
  check_ids(targets, logits.size(1), ignore_index, /*targets=*/true, info);
  Tensor row_loss = scratch({std::max<int64_t>(N, 1)}, DType::f32);
  dispatch_float(op, logits, [&](auto tag) {
    if (N > 0) launch_rows(tag, row_loss.data<float>());
  });
  cross_entropy_mean_kernel<<<1, kThreads, 0, stream_>>>(row_loss.data<float>(), N, info.data<int32_t>(),
                                                         loss.data<float>());
}

void CudaBackend::cross_entropy_forward(const Tensor& logits, const Tensor& targets,
                                        int ignore_index, Tensor& loss, Tensor& lse) {
  const int64_t N = logits.size(0), V = logits.size(1);
  mean_row_loss("cross_entropy", logits, targets, ignore_index, loss, [&](auto tag, float* row_loss) {
    using T = decltype(tag);
    const T* x = logits.data<T>();
    // 512 threads: one block a row, and a chunk's few hundred rows are about one wave.
    with_row_width<wide_width<T>()>(V, [&](auto width) {
      cross_entropy_rows_kernel<T, width()><<<N, 512, 0, stream_>>>(x, targets.data<int32_t>(), V, ignore_index,
                                                                    lse.data<float>(), row_loss);
    }, x);
  });
  CUDA_CHECK_OP("cross_entropy", logits, targets, loss, lse);
}

// The count of counted rows is recomputed on the device: no host round trip in backward. The
// targets were checked by the forward; the kernel reads logits[target] only for a target in range.
void CudaBackend::cross_entropy_backward(const Tensor& logits, const Tensor& targets,
                                         const Tensor& lse, const Tensor& dloss,
                                         int ignore_index, Tensor& dlogits) {
  require_same_dtype("cross_entropy_backward", logits, dlogits);
  LLM_CHECK(dloss.dtype() == DType::f32, "cross_entropy_backward: dloss " + dloss.str());
  const int64_t N = logits.size(0), V = logits.size(1);
  if (N == 0 || V == 0) return;
  activate();
  Tensor info = scratch({1}, DType::i32);
  check_ids(targets, V, ignore_index, /*targets=*/true, info);
  dispatch_float("cross_entropy_backward", logits, [&](auto tag) {
    using T = decltype(tag);
    const T* x = logits.data<T>();
    T* dx = dlogits.data<T>();
    const int32_t* t = targets.data<int32_t>();
    with_row_width<wide_width<T>()>(V, [&](auto width) {
      const int64_t units = V / width();
      const dim3 grid(static_cast<unsigned>(N), static_cast<unsigned>((units + kThreads - 1) / kThreads));
      cross_entropy_backward_kernel<T, width()><<<grid, kThreads, 0, stream_>>>(
          x, t, lse.data<float>(), dloss.data<float>(), info.data<int32_t>(), V, ignore_index, dx);
    }, x, static_cast<const T*>(dx));
  });
  CUDA_CHECK_OP("cross_entropy_backward", logits, targets, lse, dloss, dlogits);
}

void CudaBackend::topk_entropy_weights(const Tensor& logits, const Tensor& targets, const Tensor& lse, int64_t k,
                                       float alpha, int ignore_index, Tensor& weights, Tensor& loss) {
  const int64_t N = logits.size(0), V = logits.size(1);
  LLM_CHECK(k >= 1 && k <= kMaxEntropyTopK && k <= V,
            "topk_entropy_weights: k " + std::to_string(k) + " outside [1, min(64, vocab " + std::to_string(V) + ")]");
  // 128 threads: each one's k entries stay few enough for local memory to cache.
  mean_row_loss("topk_entropy_weights", logits, targets, ignore_index, loss, [&](auto tag, float* row_loss) {
    using T = decltype(tag);
    topk_entropy_rows_kernel<<<N, 128, 0, stream_>>>(logits.data<T>(), targets.data<int32_t>(), lse.data<float>(), V,
                                                     static_cast<int>(k), alpha, ignore_index, weights.data<float>(),
                                                     row_loss);
  });
  CUDA_CHECK_OP("topk_entropy_weights", logits, targets, lse, weights, loss);
}

void CudaBackend::target_prob_weights(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                      int ignore_index, Tensor& weights, Tensor& loss) {
  const int64_t N = logits.size(0), V = logits.size(1);
  mean_row_loss("target_prob_weights", logits, targets, ignore_index, loss, [&](auto tag, float* row_loss) {
    using T = decltype(tag);
    target_prob_rows_kernel<<<static_cast<unsigned>((N + kThreads - 1) / kThreads), kThreads, 0, stream_>>>(
        logits.data<T>(), targets.data<int32_t>(), lse.data<float>(), N, V, ignore_index, weights.data<float>(),
        row_loss);
  });
  CUDA_CHECK_OP("target_prob_weights", logits, targets, lse, weights, loss);
}

void CudaBackend::argmax_hits(const Tensor& logits, const Tensor& targets, int ignore_index, Tensor& hits) {
  const int64_t N = logits.size(0), V = logits.size(1);
  if (N == 0) return;
  activate();
  Tensor info = scratch({1}, DType::i32);
  check_ids(targets, V, ignore_index, /*targets=*/true, info);
  dispatch_float("argmax_hits", logits, [&](auto tag) {
    using T = decltype(tag);
    argmax_hits_kernel<<<N, kThreads, 0, stream_>>>(logits.data<T>(), targets.data<int32_t>(), V, ignore_index,
                                                    hits.data<float>());
  });
  CUDA_CHECK_OP("argmax_hits", logits, targets, hits);
}

void CudaBackend::softmax_stats(const Tensor& logits, const Tensor& lse, Tensor& entropy, Tensor& mean_logit) {
  const int64_t N = logits.size(0), V = logits.size(1);
  if (N == 0) return;
  activate();
  dispatch_float("softmax_stats", logits, [&](auto tag) {
    using T = decltype(tag);
    softmax_stats_kernel<<<N, kThreads, 0, stream_>>>(logits.data<T>(), lse.data<float>(), V, entropy.data<float>(),
                                                      mean_logit.data<float>());
  });
  CUDA_CHECK_OP("softmax_stats", logits, lse, entropy, mean_logit);
}

}  // namespace llm
