// Checkpoint directories: output_dir/step_NNNNNN/ holding config.yaml, model.bin, optimizer.bin
// and trainer.bin (tensor files, io/tensor_file.h), and metrics.jsonl (the run's log up to the step,
// as HF's trainer_state.json carries log_history) when there is one, sealed by manifest.json, written last: format
// version, step, run id, and each file's size and checksum. Every .bin file's metadata carries the
// step and run id too, so a file copied in from another checkpoint or another run, an edited
// config.yaml or a cut file is refused before anything loads, naming the file and what disagrees.
// A save writes step_NNNNNN.tmp/, fsyncs every file and the directory, then renames it into
// place, so a crash at any instant leaves either the complete new checkpoint or none of it. Any
// directory named *.tmp is garbage from a crash. Checkpoints written before manifests existed
// (no manifest.json) still load; load_checkpoint reports them as unsealed.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/tensor_file.h"

namespace llm {

struct CheckpointContents {
  std::string config_yaml;  // the resolved config, so `--resume DIR` needs nothing else
  TensorFile model;         // parameters (f32 master weights, or bf16 ones under bfloat16: true)
  TensorFile optimizer;     // the optimizer's state (AdamW's moments, or another optimizer's)
  TensorFile trainer;       // step, epoch, data cursor, RNG, LR state, best eval loss, patience
  // 16 hex digits, chosen when a run starts (new_run_id) and kept across its resumes; empty from
  // an unsealed checkpoint.
  std::string run_id;
  bool sealed = true;  // set by load_checkpoint: false when there is no manifest.json (legacy)
  std::optional<std::string> metrics_log;  // the run's metrics.jsonl up to the step, if it carries one
};

// A fresh random run id (64 bits as 16 hex digits).
std::string new_run_id();

// "step_000120": six digits, more when the step needs them.
std::string checkpoint_dir_name(int64_t step);

// The step of a checkpoint directory path (its last component "step_<digits>"); nullopt for
// anything else, *.tmp included.
std::optional<int64_t> checkpoint_step(const std::string& dir);

// What save_checkpoint writes: CheckpointContents with model.bin's and optimizer.bin's tensors
// made while they are written (a TensorFileSource each, produced in that order), so a sharded
// save gathers, writes and drops one bucket at a time.
struct CheckpointSave {
  std::string config_yaml;
  TensorFileSource model, optimizer;
  TensorFile trainer;
  std::string run_id;
  std::optional<std::string> metrics_log;  // written as metrics.jsonl when given (an empty log too)
};

// Writes output_dir/step_NNNNNN/ (creating output_dir; replacing an existing checkpoint of the
// same step atomically), removes leftover *.tmp directories, and points output_dir/latest at the
// new directory. Stamps "step" and "run_id" into every .bin file's metadata and writes the
// manifest last. Returns the checkpoint's path.
std::string save_checkpoint(const std::string& output_dir, int64_t step, const CheckpointSave& contents);
// The same from whole tensors.
std::string save_checkpoint(const std::string& output_dir, int64_t step,
                            const CheckpointContents& contents);

// Reads and validates every file of a checkpoint directory and checks it against the manifest
// (every file's size first, then its checksum, step and run id); a missing, damaged or foreign
// file is a UserError naming it.
CheckpointContents load_checkpoint(const std::string& dir);

// A checkpoint opened for a resume that reads only what each rank keeps (ZeRO-3: its slices).
// Checked as far as load_checkpoint checks it short of the tensors' bytes: the manifest, every
// file's size, config.yaml, each tensor file's header with its step, run and checksum against the
// manifest; trainer.bin is read whole. model.bin's and optimizer.bin's tensors are read when
// asked for, whole or in parts, and checked as TensorFileReader says.
struct OpenCheckpoint {
  std::string config_yaml;
  std::string run_id;  // empty from an unsealed checkpoint
  bool sealed = true;
  std::unique_ptr<TensorFileReader> model, optimizer;
  TensorFile trainer;
  std::optional<std::string> metrics_log;
};
OpenCheckpoint open_checkpoint(const std::string& dir);

// load_checkpoint's validation without keeping the tensors (streams each file once). Returns
// whether the checkpoint is sealed (false: legacy, no manifest.json).
bool verify_checkpoint(const std::string& dir);

// config.yaml of a checkpoint, checked against its manifest (when there is one), so a resume
// never starts from an edited or cut config.
std::string read_checkpoint_config(const std::string& dir);

// A checkpoint directory as named ("step_000004", "out/step_000004/"), absolute and without a
// trailing separator, so that its parent is the directory it sits in.
std::filesystem::path checkpoint_path(const std::string& dir);

// Whether dir holds manifest.json, model.bin, optimizer.bin or trainer.bin: a checkpoint, whole or
// not, which a run must not take as its output_dir (its files would be replaced).
bool holds_checkpoint_files(const std::string& dir);

// The checkpoint directories of output_dir, oldest step first (empty when output_dir is absent).
std::vector<std::string> list_checkpoints(const std::string& output_dir);

// The run id a checkpoint's manifest names; nullopt for a legacy checkpoint or an unreadable
// manifest (whose run cannot be told).
std::optional<std::string> checkpoint_run_id(const std::string& dir);

// The newest checkpoint that passes verify_checkpoint. Each newer one that fails is skipped and
// `warn` receives one line: the reason, then "; skipping <dir>". Auto-resume thus falls back to
// the previous valid checkpoint.
std::optional<std::string> find_latest_valid_checkpoint(
    const std::string& output_dir, const std::function<void(const std::string&)>& warn);

// The directory name output_dir/latest points at (written by save_checkpoint); nullopt if none.
std::optional<std::string> read_latest_pointer(const std::string& output_dir);

// HF's Trainer's rotation (_sorted_checkpoints, _rotate_checkpoints), after a save: the
// checkpoints by step, best_step's (HF's best_model_checkpoint) moved next to last unless it is the
// newest, and the first ones deleted so that save_total_limit remain, or 2 when the limit is 1 and
// the best is not the newest. At the end of training with a limit of 1, every checkpoint but the
// best is deleted and `latest` names it (as HF's train() ends). The one `latest` names is never
// deleted; a limit <= 0 keeps all.
// What an uninterrupted run ends with, for one whose last save was cut off after its checkpoint was
// in place (a kill between the rename and `latest`, or inside the pruning after it): leftover
// *.tmp entries removed and `latest` on `newest`, the run's newest checkpoint (the one it saved
// last, or resumed), when that is in output_dir. A no-op after a clean save.
void settle_checkpoints(const std::string& output_dir, const std::string& newest);

enum class CheckpointsPruned { after_a_save, at_the_end };
void prune_checkpoints(const std::string& output_dir, int64_t save_total_limit,
                       std::optional<int64_t> best_step = std::nullopt,
                       CheckpointsPruned when = CheckpointsPruned::after_a_save);

}  // namespace llm
