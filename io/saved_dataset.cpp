// defines: saved_dataset_files
#include "io/saved_dataset.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/user_error.h"
#include "io/json_text.h"

namespace llm {
namespace {
namespace fs = std::filesystem;
}  // namespace

std::optional<std::vector<std::string>> saved_dataset_files(const std::string& dir, const std::string& split,
                                                            std::vector<std::string>& splits) {
  std::error_code ec;
  fs::path root(dir);
  if (const fs::path dict_file = root / "dataset_dict.json"; fs::is_regular_file(dict_file, ec)) {
    const std::string path = dict_file.string(), expected = "a saved DatasetDict's {\"splits\": [names]}";
    const nlohmann::json dict = parse_json_text(read_whole_file(path, expected), path, expected);
    if (dict.is_object() && dict.contains("splits") && dict["splits"].is_array())
      for (const nlohmann::json& s : dict["splits"])
        if (s.is_string()) splits.push_back(s.get<std::string>());
    if (splits.empty()) throw UserError(path + ": expected " + expected + ", got no splits");
    if (std::find(splits.begin(), splits.end(), split) == splits.end()) return std::nullopt;
    splits.clear();
    root /= split;
    if (!fs::is_regular_file(root / "state.json", ec))
      throw UserError(root.string() + ": expected the DatasetDict's " + split +
                      " split saved by save_to_disk (a state.json), got none");
  }
  const fs::path state_file = root / "state.json";
  if (!fs::is_regular_file(state_file, ec)) return std::nullopt;
  const std::string path = state_file.string(), expected = "save_to_disk's state ({\"_data_files\": [{\"filename\": ...}]})";
  const nlohmann::json state = parse_json_text(read_whole_file(path, expected), path, expected);
  std::vector<std::string> files;
  if (state.is_object() && state.contains("_data_files") && state["_data_files"].is_array())
    for (const nlohmann::json& entry : state["_data_files"]) {
      if (!entry.is_object() || !entry.contains("filename") || !entry["filename"].is_string())
        throw UserError(path + ": expected " + expected + ", got an entry " + entry.dump());
      const fs::path name = fs::path(entry["filename"].get<std::string>()).lexically_normal();
      if (name.empty() || name.is_absolute() || *name.begin() == "..")
        throw UserError(path + ": expected data files inside " + root.string() + ", got '" + name.string() + "'");
      if (!fs::is_regular_file(root / name, ec))
        throw UserError(path + ": lists data file " + name.string() + ", which is missing");
      files.push_back((root / name).string());
    }
  if (files.empty()) throw UserError(path + ": expected " + expected + " listing at least one file, got none");
  return files;
}

}  // namespace llm
