// defines: CudaBackend::check_ids, check_doc_ids, raise_input_errors (integer inputs validated on
// the device without a wait: a bad id is recorded there and thrown at the next host read)
//
// The data pipeline validates ids where it makes them (io/examples.cpp, io/dataset.cpp), so in
// training these checks never fire. They stay as a safety net for every other caller (sampling,
// tests, a stale token cache) at the price of one small kernel each: reading their result at
// once would stall every step on the device's queue, so the first bad id is kept in
// input_errors_ and the host looks at it only when it waits for the device anyway.
#include <climits>

#include "cuda/cuda_common.cuh"

namespace llm {

namespace {

constexpr int kCheckThreads = 1024;  // one block: ids are few (tokens of a batch)

// What input_errors_ = {kind, a, b, c} holds; a, b and c are per kind.
enum InputError : int32_t {
  kNone = 0,
  kTokenId = 1,  // embedding: a = the id, b = the vocabulary size
  kTarget = 2,   // cross_entropy: a = the target, b = the vocabulary size
  kDocIds = 3,   // mem_efficient_attention: a = the row, b and c = the decreasing pair
};

__device__ int64_t block_min(int64_t v, int64_t* shared) {
  for (int off = 16; off > 0; off >>= 1) v = min(v, __shfl_xor_sync(0xffffffffu, v, off));
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < blockDim.x / 32 ? shared[lane] : LLONG_MAX;
  for (int off = 16; off > 0; off >>= 1) v = min(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

// Kernels on one stream run in order, so the first error recorded stays until the host reads it.
__device__ void record_error(int32_t* errors, int32_t kind, int32_t a, int32_t b, int32_t c) {
  if (errors[0] != kNone) return;
  errors[0] = kind;
  errors[1] = a;
  errors[2] = b;
  errors[3] = c;
}

// info[0] = ids that are not `ignore`; the first id outside [0, limit) goes to `errors`.
__global__ void check_ids_kernel(const int32_t* ids, int64_t n, int64_t limit, int64_t ignore,
                                 int32_t kind, int32_t* info, int32_t* errors) {
  __shared__ int64_t shared[32];
  int64_t count = 0, first_bad = LLONG_MAX;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const int32_t id = ids[i];
    if (id == ignore) continue;
    count++;
    if ((id < 0 || id >= limit) && first_bad == LLONG_MAX) first_bad = i;
  }
  count = block_sum(count, shared);
  first_bad = block_min(first_bad, shared);
  if (threadIdx.x != 0) return;
  info[0] = static_cast<int32_t>(count);
  if (first_bad != LLONG_MAX)
    record_error(errors, kind, ids[first_bad], static_cast<int32_t>(limit), 0);
}

// The first flat index t (not a row start) with doc[t] < doc[t - 1] goes to `errors`.
__global__ void check_doc_ids_kernel(const int32_t* doc, int64_t n, int64_t seq,
                                     int32_t* errors) {
  __shared__ int64_t shared[32];
  int64_t first_bad = LLONG_MAX;
  for (int64_t t = threadIdx.x; t < n; t += blockDim.x)
    if (t % seq != 0 && doc[t] < doc[t - 1] && first_bad == LLONG_MAX) first_bad = t;
  first_bad = block_min(first_bad, shared);
  if (threadIdx.x == 0 && first_bad != LLONG_MAX)
    record_error(errors, kDocIds, static_cast<int32_t>(first_bad / seq), doc[first_bad - 1],
                 doc[first_bad]);
}

}  // namespace

void CudaBackend::check_ids(const Tensor& ids, int64_t limit, int64_t ignore, bool targets,
                            Tensor& info) {
  LLM_CHECK(ids.dtype() == DType::i32 && ids.device() == Device::cuda(device_),
            "token ids and targets must be i32 on cuda:" + std::to_string(device_) + ", got " +
                ids.str());
  activate();
  check_ids_kernel<<<1, kCheckThreads, 0, stream_>>>(ids.data<int32_t>(), ids.numel(), limit,
                                                     ignore, targets ? kTarget : kTokenId,
                                                     info.data<int32_t>(), input_errors_);
  CUDA_CHECK_OP("check_ids", ids, info);
}

void CudaBackend::check_doc_ids(const Tensor& doc_ids, int64_t seq) {
  LLM_CHECK(doc_ids.dtype() == DType::i32 && doc_ids.device() == Device::cuda(device_),
            "mem_efficient_attention: doc_ids must be i32 on cuda:" + std::to_string(device_) +
                ", got " + doc_ids.str());
  activate();
  check_doc_ids_kernel<<<1, kCheckThreads, 0, stream_>>>(doc_ids.data<int32_t>(),
                                                         doc_ids.numel(), seq, input_errors_);
  CUDA_CHECK_OP("mem_efficient_attention doc_ids check", doc_ids);
}

// Called with the stream drained: the copy adds a round trip of microseconds, no wait for work.
void CudaBackend::raise_input_errors() {
  int32_t e[4];
  CUDA_CHECK(cudaMemcpyAsync(e, input_errors_, sizeof(e), cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  if (e[0] == kNone) return;
  CUDA_CHECK(cudaMemsetAsync(input_errors_, 0, sizeof(e), stream_));  // reported once
  const std::string found = " (a device check's finding, reported at the next wait for the device)";
  if (e[0] == kDocIds)
    throw std::runtime_error("mem_efficient_attention: doc_ids must not decrease along the "
                             "sequence (documents are contiguous runs); row " +
                             std::to_string(e[1]) + " goes from " + std::to_string(e[2]) +
                             " to " + std::to_string(e[3]) + found);
  throw std::runtime_error(std::string(e[0] == kTarget ? "cross_entropy: target " : "embedding: token id ") +
                           std::to_string(e[1]) + " outside the vocabulary of " +
                           std::to_string(e[2]) + found);
}

}  // namespace llm
