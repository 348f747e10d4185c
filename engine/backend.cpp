// defines: the backend registry (register_backend, device_count, backend), the wall-clock
// DeviceTimer that backends without device events use, require_scalar_factor,
// require_f64_accumulator, the host-read counter, require_cudnn_mask,
// require_quantised_moment, and the flash
// kernels standing in for cuDNN attention on backends without cuDNN
#include "engine/backend.h"

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>

#include "engine/check.h"
#include "engine/op_timer.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/quant_map.h"

namespace llm {

namespace {
struct Registered {
  BackendFactory factory = nullptr;
  DeviceCounter counter = nullptr;
};

struct Registry {
  std::mutex mutex;
  std::map<DeviceType, Registered> types;
  std::map<std::pair<DeviceType, int>, std::unique_ptr<Backend>> instances;
};

Registry& registry() {
  static Registry r;
  return r;
}
class WallClockTimer final : public DeviceTimer {
 public:
  explicit WallClockTimer(Backend& backend) : backend_(backend) {}
  void start() override {
    backend_.synchronize();
    start_ = std::chrono::steady_clock::now();
  }
  double stop_ms() override {
    backend_.synchronize();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  Backend& backend_;
  std::chrono::steady_clock::time_point start_;
};
}  // namespace

std::unique_ptr<DeviceTimer> Backend::make_timer() { return std::make_unique<WallClockTimer>(*this); }

void Backend::set_op_split(bool on) { OpTimer::enable(on); }

void require_scalar_factor(const char* op, const Tensor& s) {
  LLM_CHECK(s.dtype() == DType::f32 && s.numel() == 1,
            std::string(op) + ": the factor must be an f32 scalar, got " + s.str());
}

void require_f64_accumulator(const char* op, const Tensor& acc) {
  LLM_CHECK(acc.dtype() == DType::f32 && acc.numel() == 2 && acc.is_contiguous(),
            std::string(op) + ": the accumulator must be f32 (2), one f64, got " + acc.str());
}

namespace {
std::atomic<uint64_t> host_read_count{0};
std::atomic<int64_t> host_read_nanoseconds{0};
}  // namespace

HostRead::HostRead() : start_(std::chrono::steady_clock::now()) {
  host_read_count.fetch_add(1, std::memory_order_relaxed);
}

HostRead::~HostRead() {
  const auto spent = std::chrono::steady_clock::now() - start_;
  host_read_nanoseconds.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(spent).count(),
                                  std::memory_order_relaxed);
}

uint64_t host_reads() { return host_read_count.load(std::memory_order_relaxed); }
double host_read_seconds() { return host_read_nanoseconds.load(std::memory_order_relaxed) * 1e-9; }

void require_cudnn_mask(const AttentionMask& mask) {
  LLM_CHECK(!mask.bias.defined() && !mask.doc_ids.defined(),
            "cudnn_attention takes no bias or document mask; mem_efficient_attention "
            "(xformers_attention) does");
  LLM_CHECK(mask.s2_group == 0, "cudnn_attention has no S2 groups; s2_attention has");
}

void require_quantised_moment(const char* op, const Tensor& param, const Tensor& codes, const Tensor& absmax,
                              int code_bits) {
  // 4-bit codes pack two a byte in whole quantisation blocks (torchao quantises no other tensor).
  LLM_CHECK(codes.dtype() == DType::u8 && codes.numel() * 8 == param.numel() * code_bits &&
                (code_bits == 8 || param.numel() % kQuantBlock == 0),
            std::string(op) + ": " + std::to_string(code_bits) + "-bit codes " + codes.str() + " for " + param.str());
  LLM_CHECK(absmax.dtype() == DType::f32 && absmax.numel() == (param.numel() + kQuantBlock - 1) / kQuantBlock,
            std::string(op) + ": absmax " + absmax.str() + " for " + param.str());
}

void Backend::cudnn_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                      const AttentionMask& mask, Tensor& out, Tensor& lse) {
  require_cudnn_mask(mask);
  flash_attention_forward(q, k, v, mask, out, lse);
}

void Backend::cudnn_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                       const Tensor& out, const Tensor& lse, const Tensor& dout,
                                       const AttentionMask& mask, Tensor& dq, Tensor& dk,
                                       Tensor& dv) {
  require_cudnn_mask(mask);
  flash_attention_backward(q, k, v, out, lse, dout, mask, dq, dk, dv);
}

void register_backend(DeviceType type, BackendFactory factory, DeviceCounter counter) {
  std::lock_guard<std::mutex> lock(registry().mutex);
  registry().types[type] = {factory, counter};
}

int device_count(DeviceType type) {
  if (type == DeviceType::cpu) return 1;
  Registered r;
  {
    std::lock_guard<std::mutex> lock(registry().mutex);
    auto it = registry().types.find(type);
    if (it == registry().types.end()) return 0;
    r = it->second;
  }
  return r.counter ? r.counter() : 0;
}

Backend& backend(Device device) {
  if (device.is_cpu()) return cpu_backend();
  int count = device_count(device.type);
  LLM_CHECK(device.index >= 0 && device.index < count,
            "device " + device.str() + " does not exist (" + std::to_string(count) +
                " visible)");
  std::lock_guard<std::mutex> lock(registry().mutex);
  auto& slot = registry().instances[{device.type, device.index}];
  if (!slot) slot = registry().types.at(device.type).factory(device.index);
  return *slot;
}

}  // namespace llm
