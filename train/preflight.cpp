// defines: lock_output_dir, estimate_training_memory, check_memory, physical_memory_bytes
#include "train/preflight.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "engine/user_error.h"

namespace llm {

namespace fs = std::filesystem;

OutputDirLock::~OutputDirLock() {
  if (fd_ >= 0) ::close(fd_);
}

OutputDirLock::OutputDirLock(OutputDirLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}

OutputDirLock& OutputDirLock::operator=(OutputDirLock&& o) noexcept {
  std::swap(fd_, o.fd_);
  return *this;
}

OutputDirLock lock_output_dir(const TrainConfig& c) {
  const std::string& dir = c.output_dir;
  auto bad = [&](const std::string& what) {
    return UserError(c.source + ": output_dir: " + what);
  };
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw bad("expected a directory, got a file: " + dir);
  fs::create_directories(dir, ec);  // fails with "Not a directory" under a file
  if (ec) throw bad("expected a directory that can be created, got " + dir + " (" + ec.message() + ")");
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw bad("expected a writable directory, got " + dir + " (" + std::strerror(errno) + ")");
  const std::string path = (fs::path(dir) / ".lock").string();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw bad("cannot create the lock file " + path + " (" + std::strerror(errno) + ")");
  OutputDirLock held(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0)
    throw bad(errno == EWOULDBLOCK
                  ? dir + " is in use by another llm_train run (it holds " + path +
                        "); wait for it to end or choose another output_dir"
                  : "cannot lock " + path + " (" + std::strerror(errno) + ")");
  return held;
}

MemoryEstimate estimate_training_memory(const TrainConfig& c) {
  const LlamaConfig& m = c.model;
  MemoryEstimate e;
  e.parameters = m.num_parameters();
  e.state_bytes = static_cast<long double>(e.parameters) * (4 + 4 + 8);
  // Per token, each layer keeps about its inputs, norms, q/k/v, attention output and residual
  // (~8 C + 2 kv) and the MLP's gate, up and product (3 F); eager attention adds its
  // probabilities (heads x sequence). Recompute keeps one layer whole plus each layer's input.
  const long double C = m.hidden_size, F = m.intermediate_size;
  const long double kv = static_cast<long double>(m.num_key_value_heads) * m.head_dim();
  const bool eager = c.attention == AttentionKind::eager;
  const long double layer = 8 * C + 2 * kv + 3 * F +
                            (eager ? static_cast<long double>(m.num_attention_heads) * c.data.sequence_len : 0);
  const long double layers = c.gradient_checkpointing ? layer + m.num_hidden_layers * C : layer * m.num_hidden_layers;
  const long double tokens = static_cast<long double>(c.micro_batch_size) * c.data.sequence_len;
  e.activation_bytes = tokens * (layers + 3.0L * m.vocab_size) * 4;  // + logits, their softmax and gradient
  return e;
}

uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

void check_memory(const TrainConfig& c, uint64_t available, const std::string& what) {
  const MemoryEstimate e = estimate_training_memory(c);
  if (available == 0 || e.total() <= available) return;
  constexpr long double kGiB = 1024.0L * 1024 * 1024;
  throw UserError(fmt::format(
      "{}: the model needs about {:.1f} GiB ({} parameters x 16 bytes of f32 weights, gradients and "
      "AdamW state = {:.1f} GiB, plus {:.1f} GiB of activations), but this machine has {:.1f} GiB of "
      "{}; lower hidden_size, intermediate_size, num_hidden_layers or vocab_size (activations: "
      "micro_batch_size, sequence_len, or gradient_checkpointing: true)",
      c.source, static_cast<double>(e.total() / kGiB), e.parameters,
      static_cast<double>(e.state_bytes / kGiB), static_cast<double>(e.activation_bytes / kGiB),
      static_cast<double>(available / kGiB), what));
}

}  // namespace llm
