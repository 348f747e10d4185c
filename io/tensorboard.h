// TensorBoard event files, as torch.utils.tensorboard's SummaryWriter writes them and HF's
// TensorBoardCallback fills them (Axolotl's use_tensorboard): a TFRecord file of Event protos,
// the first holding file_version "brain.Event:2", then one per scalar (Summary.Value's tag and
// simple_value at a step). A TFRecord is its data's length (u64), the length's masked CRC-32C,
// the data, and the data's masked CRC-32C, little-endian.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace llm {

// CRC-32C (Castagnoli) of bytes, and TFRecord's mask of it: rotated right by 15, plus 0xa282ead8.
uint32_t crc32c(const void* data, size_t bytes);
uint32_t masked_crc32c(const void* data, size_t bytes);

// torch's file name in `dir`: events.out.tfevents.<seconds, 10 digits>.<hostname>.<pid>.0
std::string tensorboard_file_name(double wall_time);

// HF's TensorBoardCallback's directory: TENSORBOARD_LOGGING_DIR when set (~ expanded), else
// output_dir/runs/<local time as %b%d_%H-%M-%S>_<hostname> (torch's default_logdir).
std::string tensorboard_dir(const std::string& output_dir);

class TensorBoardWriter {
 public:
  // Creates `dir` and the event file in it (UserError naming the path when it cannot).
  explicit TensorBoardWriter(const std::string& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // add_scalar(tag, value, step) at the current wall time, in f32 as simple_value holds it.
  void scalar(const std::string& tag, double value, int64_t step);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void record(const std::string& event);
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace llm
