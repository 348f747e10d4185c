// A directory HF's `save_to_disk` wrote, found as Axolotl finds it (`load_from_disk` before
// anything else for a local directory): its Arrow files, read by io/arrow_ipc.h.
#pragma once
#include <string>
#include <vector>

namespace llm {

// The data files of `dir` in the order its state.json lists them (`_data_files`), or of its train
// split's directory when it holds a DatasetDict (dataset_dict.json). Empty when `dir` is no saved
// dataset. Throws UserError naming the file on a damaged state.json or dataset_dict.json, a
// DatasetDict without a train split, or a listed file that is missing or outside `dir`.
std::vector<std::string> saved_dataset_files(const std::string& dir);

}  // namespace llm
