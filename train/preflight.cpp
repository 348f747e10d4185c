// defines: lock_output_dir, check_memory
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
#include "io/checkpoint.h"

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
  // The final export writes config.json and the weights into output_dir.
  refuse_export_into_base(c, dir, "final");
  if (c.merge_lora) refuse_export_into_base(c, merged_model_dir(c), "merged");
  // A checkpoint as output_dir: this run's metrics.jsonl would replace the one its manifest seals.
  if (holds_checkpoint_files(dir))
    throw bad(dir + " is a checkpoint, whose files this run would replace; resume it (--resume " + dir +
              ") into another output_dir, or choose another");
  // A checkpoint's name on something else would end the run at its first save, the steps since
  // the start lost (a save replaces a checkpoint directory, not a file or a link that leads nowhere).
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::optional<int64_t> step = checkpoint_step(entry.path().string());
    if (!step || entry.path().filename() != checkpoint_dir_name(*step)) continue;  // a name a save writes
    std::error_code status_error;
    const fs::file_type type = fs::status(entry.path(), status_error).type();
    if (type == fs::file_type::directory) continue;
    const std::string what = status_error.value() == ELOOP ? "a loop of symbolic links"
                             : type == fs::file_type::not_found ? "a symbolic link to nothing"
                             : type == fs::file_type::regular   ? "a file"
                                                                : "no directory";
    throw bad(entry.path().string() + ": expected a checkpoint directory, got " + what + "; move it away");
  }
  // Each save replaces `latest`, the file naming the newest checkpoint; a directory there would
  // end the run at its first save in the same way.
  const fs::path latest = fs::path(dir) / "latest";
  if (fs::is_directory(fs::symlink_status(latest, ec)))
    throw bad(latest.string() + ": expected the file naming the newest checkpoint, got a directory; move it away");
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

std::string merged_model_dir(const TrainConfig& c) {
  return (fs::path(c.output_dir) / "merged").lexically_normal().string();
}

void refuse_export_into_base(const TrainConfig& c, const std::string& dir, const char* what) {
  std::error_code ec;
  if (!c.base_model_is_preset() && fs::equivalent(dir, c.base_model, ec))
    throw UserError(c.source + ": output_dir: " + dir + " is base_model's directory, whose weights the " + what +
                    " export would replace; choose another");
}

namespace {
// GiB for real models, MiB for small ones: a refused tiny model still shows its numbers.
std::string format_bytes(double bytes) {
  constexpr double kMiB = 1024.0 * 1024, kGiB = kMiB * 1024;
  return bytes >= kGiB ? fmt::format("{:.1f} GiB", bytes / kGiB) : fmt::format("{:.1f} MiB", bytes / kMiB);
}
}  // namespace

void check_memory(const TrainConfig& c, const MemoryPlan& plan, uint64_t available, const std::string& device) {
  if (available == 0 || plan.peak_bytes <= static_cast<double>(available)) return;
  // The largest of the step's items is named when the peak is the step's and holds it (an
  // evaluation's rows are no item of the step), and the keys to lower are that moment's.
  const MemoryItem& largest = plan.largest();
  const bool evaluation = plan.peak_when.rfind("evaluation", 0) == 0;
  const std::string largest_text = !evaluation && largest.bytes <= plan.peak_bytes
                                       ? fmt::format("largest: {} {}; ", largest.name, format_bytes(largest.bytes))
                                       : "";
  throw UserError(fmt::format(
      "{}: a rank needs about {} at its peak ({}at {}; `llm_bench memory --config {}` prints the plan), but {} has {} "
      "available; lower {}",
      c.source, format_bytes(plan.peak_bytes), largest_text, plan.peak_when, c.source, device,
      format_bytes(static_cast<double>(available)),
      evaluation ? "eval_batch_size (the rows an evaluation takes in one forward)"
                 : "hidden_size, intermediate_size, num_hidden_layers or vocab_size (activations: micro_batch_size, "
                   "sequence_len, or gradient_checkpointing: true)"));
}

}  // namespace llm
