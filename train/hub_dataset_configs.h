// A dataset repo's configs (HF `datasets`' `name`): the `configs:` list of its README.md's YAML
// front matter, as the hub writes it for push_to_hub(config_name=...) and as dataset authors
// write it by hand; and the files of one config's splits.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace llm {

struct HubDatasetConfig {
  std::string name;                     // config_name
  bool is_default = false;              // `default: true`
  // The patterns (fsspec globs) of each split, as written: a plain pattern or list is train's.
  std::vector<std::pair<std::string, std::vector<std::string>>> split_files;
  std::string data_dir;  // the directory its data_files resolve in, or whose files are found as a directory's
};

// The configs of the dataset directory `dir` (a hub snapshot or a local directory), in order;
// empty without a README.md, without front matter or without `configs:`. Throws
// std::runtime_error naming the README when the front matter is not YAML or a config is malformed.
std::vector<HubDatasetConfig> hub_dataset_configs(const std::string& dir);

// The config a dataset entry means: the one named `name`, or without a name the one marked
// default, else the one named "default", else the only one. nullptr when there is none such; then
// `why` says what there is ("configs a, b"), for a one-line refusal.
const HubDatasetConfig* choose_hub_dataset_config(const std::vector<HubDatasetConfig>& configs,
                                                  const std::string& name, std::string& why);

// Whether `relative` (a data_files path, a card's data_dir) names something inside the directory
// it is relative to: not absolute, and no leading ".." once normalised.
bool stays_inside(const std::string& relative);

}  // namespace llm
