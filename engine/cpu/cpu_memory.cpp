// defines: the CPU allocator, the memory and thread queries, host copies, strided copies, casts and fill
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>

#include "engine/check.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/op_timer.h"

namespace llm {

namespace {
class CpuAllocator : public CachingAllocator {
 public:
  ~CpuAllocator() override { release_all(); }

 protected:
  // 64-byte alignment: whole cache lines, and what AVX-512 loads like.
  void* system_alloc(size_t bytes) override { return std::aligned_alloc(64, bytes); }
  void system_free(void* ptr) override { std::free(ptr); }
};
}  // namespace

CpuBackend& cpu_backend() {
  static CpuBackend instance;
  return instance;
}

CachingAllocator& CpuBackend::allocator() {
  static CpuAllocator instance;
  return instance;
}

namespace {
// The value of `key` ("MemAvailable:") in a /proc file of "key value kB" lines, in bytes.
std::optional<uint64_t> proc_kib(const char* path, const std::string& wanted) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)  // other lines hold text ("Name:\tllm_train")
    if (line.rfind(wanted, 0) == 0) return std::strtoull(line.c_str() + wanted.size(), nullptr, 10) * 1024;
  return std::nullopt;
}

// A number in a cgroup file ("max", or no file: none).
std::optional<uint64_t> cgroup_bytes(const char* path) {
  std::ifstream in(path);
  uint64_t bytes = 0;
  if (in >> bytes) return bytes;
  return std::nullopt;
}
}  // namespace

std::string CpuBackend::arithmetic() const {
  const int threads = omp_get_max_threads();
  return "the CPU with " + std::to_string(threads) + (threads == 1 ? " OpenMP thread" : " OpenMP threads");
}

// The least of what the machine has free (MemAvailable), what `ulimit -v` leaves this process
// (RLIMIT_AS less its mapped size: past it an allocation fails, and OpenBLAS then spins; three
// quarters of it, as address space runs ahead of the bytes used: allocator arenas, thread stacks
// and BLAS buffers are reserved whole), and what a container's cgroup leaves (its memory.max less
// its usage; MemAvailable there is the host's).
uint64_t CpuBackend::available_memory() {
  std::optional<uint64_t> available = proc_kib("/proc/meminfo", "MemAvailable:");
  const auto bound = [&available](uint64_t left) { available = std::min(available.value_or(left), left); };
  rlimit limit{};
  if (getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    const uint64_t mapped = proc_kib("/proc/self/status", "VmSize:").value_or(0);
    bound(limit.rlim_cur > mapped ? (limit.rlim_cur - mapped) / 4 * 3 : 0);
  }
  if (const std::optional<uint64_t> cap = cgroup_bytes("/sys/fs/cgroup/memory.max")) {
    // Its usage counts the page cache too, of which the inactive part is reclaimed first.
    uint64_t used = cgroup_bytes("/sys/fs/cgroup/memory.current").value_or(0);
    std::ifstream stat("/sys/fs/cgroup/memory.stat");
    std::string key;
    for (uint64_t bytes = 0; stat >> key >> bytes;)
      if (key == "inactive_file") used -= std::min(used, bytes);
    bound(*cap > used ? *cap - used : 0);
  }
  // 0 tells the memory check "unknown" (no bound read); a bound with nothing left is 1 byte.
  return available ? std::max<uint64_t>(*available, 1) : 0;
}

void require_f32(const char* op, const Tensor& t) {
  LLM_CHECK(t.dtype() == DType::f32,
            std::string(op) + " on the CPU computes in f32; got " + t.str() + " (cast it first)");
}

void CpuBackend::copy_from_host(void* dst, const void* src, size_t bytes) {
  std::memcpy(dst, src, bytes);
}

void CpuBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
  std::memcpy(dst, src, bytes);
}

void CpuBackend::copy_strided(const Tensor& src, Tensor& dst) {
  LLM_CHECK(src.shape() == dst.shape() && src.dtype() == dst.dtype() && dst.is_contiguous(),
            "copy_strided " + src.str() + " into " + dst.str());
  OpTimer timer("copy_strided");
  const size_t elem = dtype_size(src.dtype());
  const char* in = static_cast<const char*>(src.data_ptr());
  char* out = static_cast<char*>(dst.data_ptr());
  const int n = src.dim();
  const int64_t total = src.numel();
  if (src.is_contiguous() || n == 0) {
    std::memcpy(out, in, total * elem);
    return;
  }
  // Walk the destination in order; keep a multi-index into the source.
  std::vector<int64_t> index(n, 0);
  int64_t src_offset = 0;
  for (int64_t i = 0; i < total; i++) {
    std::memcpy(out + i * elem, in + src_offset * elem, elem);
    for (int d = n - 1; d >= 0; d--) {
      src_offset += src.strides()[d];
      if (++index[d] < src.shape()[d]) break;
      src_offset -= src.strides()[d] * src.shape()[d];
      index[d] = 0;
    }
  }
}

void CpuBackend::cast(const Tensor& src, Tensor& dst) {
  OpTimer timer("cast");
  const int64_t n = src.numel();
  auto load = [&](int64_t i) -> float {
    switch (src.dtype()) {
      case DType::f32: return src.data<float>()[i];
      case DType::bf16: return bf16_to_f32(src.data<uint16_t>()[i]);
      case DType::i32: return static_cast<float>(src.data<int32_t>()[i]);
      case DType::u8: return static_cast<float>(src.data<uint8_t>()[i]);
    }
    return 0.0f;
  };
#pragma omp parallel for
  for (int64_t i = 0; i < n; i++) {
    float v = load(i);
    switch (dst.dtype()) {
      case DType::f32: dst.data<float>()[i] = v; break;
      case DType::bf16: dst.data<uint16_t>()[i] = f32_to_bf16(v); break;
      case DType::i32: dst.data<int32_t>()[i] = static_cast<int32_t>(v); break;
      case DType::u8: dst.data<uint8_t>()[i] = static_cast<uint8_t>(v); break;
    }
  }
}

void CpuBackend::fill(Tensor& dst, float value) {
  OpTimer timer("fill");
  const int64_t n = dst.numel();
  switch (dst.dtype()) {
    case DType::f32: std::fill_n(dst.data<float>(), n, value); break;
    case DType::bf16: std::fill_n(dst.data<uint16_t>(), n, f32_to_bf16(value)); break;
    case DType::i32: std::fill_n(dst.data<int32_t>(), n, static_cast<int32_t>(value)); break;
    case DType::u8: std::fill_n(dst.data<uint8_t>(), n, static_cast<uint8_t>(value)); break;
  }
}

}  // namespace llm
