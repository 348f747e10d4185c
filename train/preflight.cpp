// defines: lock_output_dir, check_memory, physical_memory_bytes
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

uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

void check_memory(const TrainConfig& c, const MemoryPlan& plan, uint64_t available, const std::string& what) {
  if (available == 0 || plan.peak_bytes <= available) return;
  constexpr double kGiB = 1024.0 * 1024 * 1024;
  const MemoryItem& largest = plan.largest();
  throw UserError(fmt::format(
      "{}: a rank needs about {:.1f} GiB at its peak (largest: {} {:.1f} GiB; `llm_bench memory --config "
      "{}` prints the plan), but this machine has {:.1f} GiB of {}; lower hidden_size, intermediate_size, "
      "num_hidden_layers or vocab_size (activations: micro_batch_size, sequence_len, or "
      "gradient_checkpointing: true)",
      c.source, plan.peak_bytes / kGiB, largest.name, largest.bytes / kGiB, c.source,
      static_cast<double>(available) / kGiB, what));
}

}  // namespace llm
