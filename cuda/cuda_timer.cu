// defines: CudaBackend::make_timer (CUDA events on the compute stream) and flush_caches (an L2
// eviction before a timed run), the GPU side of llm_bench's timing
#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"

namespace llm {

namespace {

// Events time what the GPU did between them, without the host's launch gaps before the first
// kernel or its wait after the last: the kernels' time, as CUDA-event benchmarks report it.
class CudaEventTimer final : public DeviceTimer {
 public:
  explicit CudaEventTimer(cudaStream_t stream) : stream_(stream) {
    CUDA_CHECK(cudaEventCreate(&start_));
    CUDA_CHECK(cudaEventCreate(&stop_));
  }
  ~CudaEventTimer() override {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  CudaEventTimer(const CudaEventTimer&) = delete;
  CudaEventTimer& operator=(const CudaEventTimer&) = delete;

  void start() override { CUDA_CHECK(cudaEventRecord(start_, stream_)); }
  double stop_ms() override {
    CUDA_CHECK(cudaEventRecord(stop_, stream_));
    CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    return ms;
  }

 private:
  cudaStream_t stream_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

}  // namespace

std::unique_ptr<DeviceTimer> CudaBackend::make_timer() {
  activate();
  return std::make_unique<CudaEventTimer>(stream_);
}

// Writing twice the L2's size replaces every line of it (H100: 50 MiB of L2, 100 MiB written).
void CudaBackend::flush_caches() {
  activate();
  if (!l2_flush_) {
    int l2_bytes = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device_));
    l2_flush_bytes_ = 2 * static_cast<size_t>(l2_bytes);
    CUDA_CHECK(cudaMalloc(&l2_flush_, l2_flush_bytes_));
  }
  CUDA_CHECK(cudaMemsetAsync(l2_flush_, 0, l2_flush_bytes_, stream_));
}

}  // namespace llm
