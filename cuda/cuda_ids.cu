// defines: CudaBackend::check_ids, check_doc_ids (integer inputs validated on the device, so a
// bad token id or target becomes a clear error instead of an out-of-bounds read)
#include <climits>

#include "cuda/cuda_common.cuh"

namespace llm {

namespace {

constexpr int kCheckThreads = 1024;  // one block: ids are few (tokens of a batch)

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

// info = {ids that are not `ignore`, index of the first id outside [0, limit) or -1, its value}.
__global__ void check_ids_kernel(const int32_t* ids, int64_t n, int64_t limit,
                                 int64_t ignore, int32_t* info) {
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
  if (threadIdx.x == 0) {
    info[0] = static_cast<int32_t>(count);
    info[1] = first_bad == LLONG_MAX ? -1 : static_cast<int32_t>(first_bad);
    info[2] = first_bad == LLONG_MAX ? 0 : ids[first_bad];
  }
}

// info = {first flat index t (not a row start) with doc[t] < doc[t - 1] or -1, the two ids}.
__global__ void check_doc_ids_kernel(const int32_t* doc, int64_t n, int64_t seq, int32_t* info) {
  __shared__ int64_t shared[32];
  int64_t first_bad = LLONG_MAX;
  for (int64_t t = threadIdx.x; t < n; t += blockDim.x)
    if (t % seq != 0 && doc[t] < doc[t - 1] && first_bad == LLONG_MAX) first_bad = t;
  first_bad = block_min(first_bad, shared);
  if (threadIdx.x == 0) {
    const bool bad = first_bad != LLONG_MAX;
    info[0] = bad ? static_cast<int32_t>(first_bad) : -1;
    info[1] = bad ? doc[first_bad - 1] : 0;
    info[2] = bad ? doc[first_bad] : 0;
  }
}

}  // namespace

void CudaBackend::check_ids(const Tensor& ids, int64_t limit, int64_t ignore, Tensor& info) {
  LLM_CHECK(ids.dtype() == DType::i32 && ids.device() == Device::cuda(device_),
            "token ids and targets must be i32 on cuda:" + std::to_string(device_) + ", got " +
                ids.str());
  activate();
  check_ids_kernel<<<1, kCheckThreads, 0, stream_>>>(ids.data<int32_t>(), ids.numel(), limit,
                                                     ignore, info.data<int32_t>());
  CUDA_CHECK_OP("check_ids", ids, info);
}

Tensor CudaBackend::require_ids_in_range(const Tensor& ids, int64_t limit, int64_t ignore,
                                         const std::string& what) {
  Tensor info = scratch({3}, DType::i32);
  check_ids(ids, limit, ignore, info);
  int32_t host[3];
  copy_to_host(host, info.data_ptr(), sizeof(host));
  LLM_CHECK(host[1] < 0, what + " " + std::to_string(host[2]) + " outside the vocabulary of " +
                             std::to_string(limit));
  return info;
}

void CudaBackend::check_doc_ids(const Tensor& doc_ids, int64_t seq) {
  LLM_CHECK(doc_ids.dtype() == DType::i32 && doc_ids.device() == Device::cuda(device_),
            "mem_efficient_attention: doc_ids must be i32 on cuda:" + std::to_string(device_) +
                ", got " + doc_ids.str());
  activate();
  Tensor info = scratch({3}, DType::i32);
  check_doc_ids_kernel<<<1, kCheckThreads, 0, stream_>>>(doc_ids.data<int32_t>(),
                                                         doc_ids.numel(), seq,
                                                         info.data<int32_t>());
  CUDA_CHECK_OP("mem_efficient_attention doc_ids check", doc_ids);
  int32_t host[3];
  copy_to_host(host, info.data_ptr(), sizeof(host));
  LLM_CHECK(host[0] < 0,
            "mem_efficient_attention: doc_ids must not decrease along the sequence (documents "
            "are contiguous runs); row " + std::to_string(host[0] / seq) + " goes from " +
                std::to_string(host[1]) + " to " + std::to_string(host[2]));
}

}  // namespace llm
