// DataConfig: what the data pipeline needs of a training config (its `datasets:` and the keys
// that decide windows and the validation split), so io/ never sees the whole program's keys.
// train/config.h holds one as TrainConfig::data; the YAML keys keep Axolotl's names.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace llm {

struct DatasetSpec {
  std::string path;                 // a file or a directory of files
  std::string type = "completion";  // completion | alpaca
};

struct DataConfig {
  std::string source;  // the config file these settings came from, named in messages
  std::vector<DatasetSpec> datasets;
  // Token cache directory. Empty in a config: output_dir/prepared, which the trainer fills in
  // before it calls io/ (io/ itself needs it set).
  std::string dataset_prepared_path;
  double val_set_size = 0.0;  // < 1: a fraction of the windows; >= 1: a count
  bool sample_packing = false;
  int64_t sequence_len = 256;
};

}  // namespace llm
