// A dataset directory given without data_files, read as HF's `datasets` 4.8 reads it for Axolotl:
// `load_dataset(dir)` (a local directory save_to_disk did not write, a hub dataset's snapshot)
// names its splits from its paths and picks one loader by its files' extensions; Axolotl then
// takes the entry's `split`, else "train" for `datasets` and "test" for `test_datasets`.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace llm {

struct DatasetDirectorySplit {
  std::string name;                // train, validation, test, or a sharded file's own split name
  std::vector<std::string> files;  // relative to the directory, in HF's order
};

struct DatasetDirectory {
  std::vector<DatasetDirectorySplit> splits;  // train, validation, test, then others sorted
  std::string loader;                         // json, parquet, arrow, csv or text
};

// HF's reading of `dir`, through fsspec:
// - the files: not hidden (no path part starting with '.'), not under a "__" directory, not
//   README.md, config.json, dataset_info(s).json, dataset_dict.json or dummy_data.zip; symlinked
//   files read, symlinked directories not entered (but a symlinked data/ for sharded names);
// - the splits, from the first rule that names any: sharded names directly in data/
//   (data/<split>-00000-of-00002.parquet), a split keyword in a directory name, then in a file
//   name (train, training; validation, valid, dev, val; test, testing, eval, evaluation; each
//   delimited by one of "-._ " or a digit, as in train.jsonl, my_test-1.csv, data/dev/x.json),
//   else every file is train; a file matching several of a split's patterns is listed each time;
// - of those, the files with an extension HF knows; the loader of each split by its most common
//   extension (ties: .parquet, .jsonl, .json, .csv, then the last name), which must be the same
//   for every split; then that loader's files only (csv's: .csv and .tsv).
// nullopt when no file has an extension HF knows (llm_train then reads its text files as
// documents, io/documents.h). Throws UserError naming `dir` where `datasets` raises (splits
// read by different loaders, a bad sharded split name, a loading script <dir name>.py in it) or
// where the loader is one llm_train
// lacks (tsv, xml, hdf5, webdataset, zip archives, media folders).
std::optional<DatasetDirectory> read_dataset_directory(const std::string& dir);

// HF datasets' resolve_pattern of one data_files pattern under `dir`, through fsspec's glob: the
// files it matches ('*' and '?' within a path part, '[...]' classes, '**' a whole part matching any
// number of parts), relative and sorted; hidden paths, "__" directories and the names HF ignores
// (README.md, ...) only where the pattern names them; with `known_extensions_only` (a card's
// configs) only files of an extension HF knows. Symlinked files are read, symlinked directories
// entered only as the pattern's literal leading part. Throws UserError naming `dir` for a '**'
// inside a part, which fsspec refuses.
std::vector<std::string> resolve_data_pattern(const std::string& dir, const std::string& pattern,
                                              bool known_extensions_only);
// Whether a data_files pattern has glob characters (else HF wants it to name a file).
bool has_glob_magic(const std::string& pattern);

// The files Axolotl reads for split `split` of the directory `dir` given no data_files, as paths
// under `dir`: a saved dataset's (load_from_disk, tried first; a DatasetDict's split of that name),
// else those read_dataset_directory gives that split. nullopt when `dir` holds neither (llm_train's
// own reading of a directory of text documents). UserError naming the splits there when it has
// none of that name; `asked`: the entry's `split:` named it (else it is Axolotl's default).
std::optional<std::vector<std::string>> directory_split_files(const std::string& dir, const std::string& split,
                                                              bool asked);

}  // namespace llm
