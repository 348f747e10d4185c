// Checkpoint directories: output_dir/step_NNNNNN/ holding config.yaml, model.bin, optimizer.bin
// and trainer.bin (tensor files, io/tensor_file.h). A save writes step_NNNNNN.tmp/, fsyncs every
// file and the directory, then renames it into place, so a crash at any instant leaves either the
// complete new checkpoint or none of it. Any directory named *.tmp is garbage from a crash.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "io/tensor_file.h"

namespace llm {

struct CheckpointContents {
  std::string config_yaml;  // the resolved config, so `--resume DIR` needs nothing else
  TensorFile model;         // parameters (fp32 master weights)
  TensorFile optimizer;     // AdamW moments
  TensorFile trainer;       // step, epoch, data cursor, RNG, LR state, best eval loss, patience
};

// "step_000120": six digits, more when the step needs them.
std::string checkpoint_dir_name(int64_t step);

// The step of a checkpoint directory path (its last component "step_<digits>"); nullopt for
// anything else, *.tmp included.
std::optional<int64_t> checkpoint_step(const std::string& dir);

// Writes output_dir/step_NNNNNN/ (creating output_dir; replacing an existing checkpoint of the
// same step atomically), removes leftover *.tmp directories, and points output_dir/latest at the
// new directory. Returns the checkpoint's path.
std::string save_checkpoint(const std::string& output_dir, int64_t step,
                            const CheckpointContents& contents);

// Reads and validates every file of a checkpoint directory; a missing or damaged file is a
// UserError naming it.
CheckpointContents load_checkpoint(const std::string& dir);

// load_checkpoint's validation without keeping the tensors (streams each file once).
void verify_checkpoint(const std::string& dir);

// The checkpoint directories of output_dir, oldest step first (empty when output_dir is absent).
std::vector<std::string> list_checkpoints(const std::string& output_dir);

// The newest checkpoint that passes verify_checkpoint. Each newer one that fails is skipped and
// `warn` receives one line: the reason, then "; skipping <dir>". Auto-resume thus falls back to
// the previous valid checkpoint.
std::optional<std::string> find_latest_valid_checkpoint(
    const std::string& output_dir, const std::function<void(const std::string&)>& warn);

// The directory name output_dir/latest points at (written by save_checkpoint); nullopt if none.
std::optional<std::string> read_latest_pointer(const std::string& output_dir);

// Keeps the save_total_limit newest checkpoints (by step), plus keep_step's (the best one when
// early stopping is on) and the one `latest` points at; deletes the rest. A limit <= 0 keeps all.
void prune_checkpoints(const std::string& output_dir, int64_t save_total_limit,
                       std::optional<int64_t> keep_step = std::nullopt);

}  // namespace llm
