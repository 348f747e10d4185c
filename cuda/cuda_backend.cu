// defines: CudaBackend (streams, cuBLASLt handle, host copies, the op split's switch), check_op,
// and the registration that makes DeviceType::cuda available to backend() when a device exists
#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/attention/cudnn_attention.h"
#include "cuda/op_split.h"
#include "engine/op_timer.h"

#include <cstdlib>
#include <string>

namespace llm {

namespace {
// cuBLASLt's recommended workspace on Hopper; more than enough for Ampere.
constexpr size_t kGemmWorkspaceBytes = size_t(32) << 20;

std::unique_ptr<Backend> make_cuda_backend(int device) {
  return std::make_unique<CudaBackend>(device);
}

// The device count cannot change while the process runs; ask the driver once. Called lazily by
// device_count(), never at static-initialisation time, so a machine without a driver is fine.
int cached_cuda_device_count() {
  static const int count = cuda_device_count();
  return count;
}

// Registration only records two function pointers: it makes no CUDA call.
const bool registered = [] {
  register_backend(DeviceType::cuda, &make_cuda_backend, &cached_cuda_device_count);
  return true;
}();

// LLM_CUDA_SYNC=1 waits for every kernel right after its launch, so that a fault inside a kernel
// is blamed on the op that launched it instead of on whichever call synchronises next. Slow: for
// a first run on a new device and for chasing a fault, never for timing.
bool sync_after_each_launch() {
  static const bool on = [] {
    const char* value = std::getenv("LLM_CUDA_SYNC");
    return value != nullptr && std::string(value) == "1";
  }();
  return on;
}
}  // namespace

void check_op(cudaError_t err, const char* op,
              std::initializer_list<std::reference_wrapper<const Tensor>> tensors,
              const char* file, int line) {
  if (err == cudaSuccess) op_split::mark(op);
  if (err == cudaSuccess && sync_after_each_launch()) err = cudaDeviceSynchronize();
  if (err == cudaSuccess) return;
  std::string what = std::string(op) + " on";
  bool first = true;
  for (const Tensor& t : tensors) {
    what += (first ? " " : ", ") + t.str();
    first = false;
  }
  throw std::runtime_error(what + ": " + cudaGetErrorString(err) + " (" + file + ":" +
                           std::to_string(line) + ")");
}

CudaBackend::CudaBackend(int device) : device_(device), allocator_(device) {
  activate();
  int major = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device_));
  fast_bf16_ = major >= 8;  // Ampere's tensor cores are the first with bf16
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  CUDA_CHECK(cudaStreamCreateWithFlags(&comm_stream_, cudaStreamNonBlocking));
  CUBLAS_CHECK(cublasLtCreate(&lt_));
  workspace_bytes_ = kGemmWorkspaceBytes;
  CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
  CUDA_CHECK(cudaMalloc(&input_errors_, 4 * sizeof(int32_t)));
  CUDA_CHECK(cudaMemsetAsync(input_errors_, 0, 4 * sizeof(int32_t), stream_));
}

// Errors are dropped here: at process exit the CUDA runtime may already be gone (see
// CudaDeviceAllocator's destructor), and a destructor must not throw.
CudaBackend::~CudaBackend() {
  cudaSetDevice(device_);
  cudaStreamSynchronize(stream_);
  cudnn_.reset();  // before the stream its handle runs on
  cudaFree(workspace_);
  cudaFree(input_errors_);
  cudaFree(l2_flush_);
  cublasLtDestroy(lt_);
  cudaStreamDestroy(comm_stream_);
  cudaStreamDestroy(stream_);
  cudaGetLastError();
}

void CudaBackend::activate() const { CUDA_CHECK(cudaSetDevice(device_)); }

void CudaBackend::set_op_split(bool on) {
  activate();
  if (on)
    op_split::start(stream_);
  else
    op_split::stop(OpTimer::totals());
}

// Memory: two transfers per memory clock over the bus. Dense bf16: the vendor's figure for the
// parts this project meets (the SM clock the runtime reports is the maximum boost, above the
// clock those figures assume: 1980 vs 1830 MHz on an H100 SXM), else SMs x clock x the dense
// bf16 FLOPs an SM issues per clock on that architecture.
DevicePeaks CudaBackend::peaks() const {
  activate();
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
  int memory_khz = 0, bus_bits = 0, sm_khz = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&memory_khz, cudaDevAttrMemoryClockRate, device_));
  CUDA_CHECK(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, device_));
  CUDA_CHECK(cudaDeviceGetAttribute(&sm_khz, cudaDevAttrClockRate, device_));
  DevicePeaks p{prop.name};
  p.memory_gb_per_s = 2.0 * memory_khz * 1e3 * (bus_bits / 8.0) / 1e9;
  const int arch = 10 * prop.major + prop.minor, sms = prop.multiProcessorCount;
  struct Stated { int arch, sms; double tflops; };
  constexpr Stated kStated[] = {{90, 132, 989.4},   // H100 SXM, H200
                                {90, 114, 756.5},   // H100 PCIe
                                {80, 108, 312.0}};  // A100
  for (const Stated& s : kStated)
    if (s.arch == arch && s.sms == sms) p.bf16_tflops = s.tflops, p.bf16_from_spec = true;
  if (!p.bf16_from_spec) {
    const double per_sm_clock = arch >= 90 ? 4096 : arch == 80 ? 2048 : 1024;
    p.bf16_tflops = sms * (sm_khz * 1e3) * per_sm_clock / 1e12;
  }
  return p;
}

uint64_t CudaBackend::available_memory() {
  activate();  // cudaMemGetInfo answers for the current device
  size_t free = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return free;
}

Tensor CudaBackend::scratch(const Shape& shape, DType dtype) const {
  return Tensor::empty(shape, dtype, Device::cuda(device_));
}

// Pageable host memory: the copy is staged, and the sync makes the host buffer free to reuse
// (and, for copy_to_host, filled) when the call returns.
void CudaBackend::copy_from_host(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  activate();
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  activate();
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  raise_input_errors();
}

void CudaBackend::synchronize() {
  activate();
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  raise_input_errors();
}

}  // namespace llm
