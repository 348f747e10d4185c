// A directory HF's `save_to_disk` wrote, found as Axolotl finds it (`load_from_disk` before
// anything else for a local directory): its Arrow files, read by io/arrow_ipc.h.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace llm {

// The data files of `dir` in the order its state.json lists them (`_data_files`), whatever `split`
// names (load_from_disk gives a Dataset, which Axolotl takes whole), or for a DatasetDict
// (dataset_dict.json) those of its split `split`. nullopt when `dir` is no saved dataset, or when
// its DatasetDict has no split `split`: then `splits` gets the ones it has. Throws UserError naming
// the file on a damaged state.json or dataset_dict.json, or a listed file that is missing or
// outside `dir`.
std::optional<std::vector<std::string>> saved_dataset_files(const std::string& dir, const std::string& split,
                                                            std::vector<std::string>& splits);

}  // namespace llm
