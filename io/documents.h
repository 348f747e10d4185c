// Documents: the text of a dataset entry (`datasets:` in the config), read from its files.
//   completion: a text file is one document, except that lines holding only "%" (the strfile
//     format of fortune files, /usr/share/games/fortunes/) separate documents; a .jsonl file (or
//     a .json array) holds objects with a "text" string.
//   alpaca: a .jsonl file or a .json array of {instruction, input, output}; the Alpaca prompt
//     carries no loss, the output does.
// A directory stands for its regular files, sorted by name, not recursive; symlinks, hidden
// files and fortune's .dat (index) and .u8 (symlink) files are skipped.
#pragma once
#include <string>
#include <vector>

#include "io/data_config.h"

namespace llm {

struct Document {
  std::string prompt;  // context the model sees but is not trained to produce (may be empty)
  std::string text;    // what the model learns to produce
};

// The files `spec` reads, in reading order. Throws UserError when the path does not exist.
std::vector<std::string> dataset_source_files(const DatasetSpec& spec);

// Every document of `spec`, in file order. Throws UserError ("<file>:<line>: <what>") on bad JSON,
// a missing field or a wrong type, and when the dataset holds no document at all.
std::vector<Document> load_documents(const DatasetSpec& spec);

// The standard Alpaca prompt; the variant without "### Input:" when `input` is empty.
std::string alpaca_prompt(const std::string& instruction, const std::string& input);

}  // namespace llm
