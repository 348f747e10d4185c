// defines: NcclCollectives — data-parallel collectives on CUDA memory through NCCL, queued on the
// backend's communication stream so they overlap the compute stream's backward.
#include <nccl.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "engine/communicator.h"

namespace llm {

namespace {

void nccl_check(ncclResult_t result, const char* what) {
  if (result != ncclSuccess)
    throw std::runtime_error(std::string(what) + " failed: " + ncclGetErrorString(result));
}

class NcclCollectives : public DeviceCollectives {
 public:
  NcclCollectives(Device device, int rank, int world_size, const std::vector<char>& id)
      : backend_(static_cast<CudaBackend&>(backend(device))), rank_(rank), world_size_(world_size) {
    ncclUniqueId unique;
    if (id.size() != sizeof unique) throw std::runtime_error("NCCL unique id of the wrong size");
    std::memcpy(&unique, id.data(), sizeof unique);
    CUDA_CHECK(cudaSetDevice(device.index));
    nccl_check(ncclCommInitRank(&comm_, world_size, unique, rank), "ncclCommInitRank");
    CUDA_CHECK(cudaEventCreateWithFlags(&compute_done_, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&comm_done_, cudaEventDisableTiming));
  }
  ~NcclCollectives() override {
    // At exit the runtime may already be gone: errors here have nobody to report to.
    ncclCommDestroy(comm_);
    cudaEventDestroy(compute_done_);
    cudaEventDestroy(comm_done_);
  }

  void allreduce_sum(Tensor& data) override {
    after_compute();
    nccl_check(ncclAllReduce(data.data_ptr(), data.data_ptr(), data.numel(), ncclFloat32, ncclSum,
                             comm_, backend_.comm_stream()),
               "ncclAllReduce");
  }

  void reduce_scatter_sum(const Tensor& data, Tensor& slice) override {
    after_compute();
    nccl_check(ncclReduceScatter(data.data_ptr(), slice.data_ptr(), slice.numel(), ncclFloat32,
                                 ncclSum, comm_, backend_.comm_stream()),
               "ncclReduceScatter");
  }

  // In place: NCCL's convention is that rank r's part already sits at offset r * part.
  void allgather(Tensor& data) override {
    after_compute();
    const size_t part = data.numel() / world_size_;
    const bool bf16 = data.dtype() == DType::bf16;  // ZeRO's bf16 compute copies, else f32
    char* base = static_cast<char*>(data.data_ptr());
    const size_t part_bytes = part * dtype_size(data.dtype());
    nccl_check(ncclAllGather(base + part_bytes * rank_, base, part, bf16 ? ncclBfloat16 : ncclFloat32, comm_,
                             backend_.comm_stream()),
               "ncclAllGather");
  }

  void wait() override {
    CUDA_CHECK(cudaEventRecord(comm_done_, backend_.comm_stream()));
    CUDA_CHECK(cudaStreamWaitEvent(backend_.stream(), comm_done_, 0));
  }

  // One event per mark: a prefetched all-gather's stays pending while backward queues
  // reduce-scatters behind it. cudaStreamWaitEvent takes the event as recorded at the call, so it
  // is destroyed at once (CUDA frees it once it has completed).
  void* mark() override {
    cudaEvent_t event = nullptr;
    CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(event, backend_.comm_stream()));
    return event;
  }

  void wait_for(void* mark) override {
    cudaEvent_t event = static_cast<cudaEvent_t>(mark);
    CUDA_CHECK(cudaStreamWaitEvent(backend_.stream(), event, 0));
    CUDA_CHECK(cudaEventDestroy(event));
  }

 private:
  // The communication stream starts only after the compute queued so far (the packed buffer).
  void after_compute() {
    CUDA_CHECK(cudaEventRecord(compute_done_, backend_.stream()));
    CUDA_CHECK(cudaStreamWaitEvent(backend_.comm_stream(), compute_done_, 0));
  }

  CudaBackend& backend_;
  int rank_, world_size_;
  ncclComm_t comm_ = nullptr;
  cudaEvent_t compute_done_ = nullptr, comm_done_ = nullptr;
};

std::vector<char> make_nccl_id() {
  ncclUniqueId id;
  nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  return std::vector<char>(reinterpret_cast<char*>(&id), reinterpret_cast<char*>(&id) + sizeof id);
}

std::unique_ptr<DeviceCollectives> make_nccl_collectives(Device device, int rank, int world_size,
                                                         const std::vector<char>& id) {
  return std::make_unique<NcclCollectives>(device, rank, world_size, id);
}

// Registration at start-up makes no CUDA or NCCL call.
const bool registered = [] {
  register_device_collectives(DeviceType::cuda, {&make_nccl_id, &make_nccl_collectives});
  return true;
}();

}  // namespace

}  // namespace llm
