// Checks a run makes before it loads data or allocates the model, so a run that cannot finish
// fails in the first second with one line: output_dir usable and held by this run alone, and
// the memory plan's peak within what the machine has.
#pragma once
#include <cstdint>
#include <string>

#include "train/config.h"
#include "train/memory_plan.h"

namespace llm {

// Holds an exclusive flock on output_dir/.lock while it lives; the kernel drops it when the
// process ends, however it ends, so a crash leaves no stale lock.
class OutputDirLock {
 public:
  OutputDirLock() = default;
  explicit OutputDirLock(int fd) : fd_(fd) {}
  ~OutputDirLock();
  OutputDirLock(OutputDirLock&& o) noexcept;
  OutputDirLock& operator=(OutputDirLock&& o) noexcept;
  OutputDirLock(const OutputDirLock&) = delete;
  OutputDirLock& operator=(const OutputDirLock&) = delete;

 private:
  int fd_ = -1;
};

// Creates c.output_dir when absent and locks it. A path that is a file, lies under a file or is
// not writable, base_model's directory (or, with merge_lora, its merged/), a checkpoint, a
// directory another run holds, or one holding a checkpoint's name (step_NNNNNN) on anything but a
// directory, is a UserError naming the key output_dir.
OutputDirLock lock_output_dir(const TrainConfig& c);

// output_dir/merged: where merge_lora (and the merge-lora command) writes base + adapters merged.
std::string merged_model_dir(const TrainConfig& c);
// Refuses in one line naming output_dir an export (`what`: "final", "merged") into base_model's
// own directory, whose weights it would replace.
void refuse_export_into_base(const TrainConfig& c, const std::string& dir, const char* what);

// Refuses in one line, naming the peak, its moment (and its largest category when that lives
// then), what `device` has available (Backend::available_memory) and that moment's keys to lower, when the memory plan's peak (train/memory_plan.h)
// exceeds `available` bytes. available == 0 (the system does not say) checks nothing.
void check_memory(const TrainConfig& c, const MemoryPlan& plan, uint64_t available, const std::string& device);

}  // namespace llm
