// Documents: the text of a dataset entry (`datasets:` in the config), read from its files.
//   completion: a .txt file holds a document per line, as HF's `text` loader reads it for
//     Axolotl; another text file is one document, except that lines holding only "%" (the
//     strfile format of fortune files, /usr/share/games/fortunes/) separate documents; a .jsonl
//     file (or a .json array) holds objects with a "text" string.
//   alpaca: a .jsonl file or a .json array of {instruction, input, output}; the Alpaca prompt
//     carries no loss, the output does.
//   chat_template: conversations under a chat template (io/chat_template.h).
//   input_output, pretokenized: rows that carry their own format (io/raw_rows.h).
// A directory stands for its regular files, sorted by name, not recursive; symlinks, hidden
// files and fortune's .dat (index) and .u8 (symlink) files are skipped.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/data_config.h"
#include "io/tokenizer.h"

namespace llm {

// Which tokens of a segment take loss.
enum class Loss {
  none,     // context only: chat headers, other roles' turns
  prompt,   // an instruction prompt: trained only with train_on_inputs (Axolotl's key)
  trained,  // what the model learns to produce
};

// A piece of a document, in order: text for the tokenizer, text in which special tokens' names
// are those tokens (input_output's segments, which the user writes as a template), the name of
// one special token (a chat template's markers, never read from user text), or token ids as
// given (pre-tokenized rows).
struct Piece {
  enum class Kind { text, text_with_specials, special, ids } kind = Kind::text;
  std::string text;                // the text; Kind::special: the token's name
  std::vector<int32_t> token_ids;  // Kind::ids
  Loss loss = Loss::trained;
};

struct Document {
  std::vector<Piece> pieces;
  bool add_bos = true;  // BOS first; chat templates that render their own set both false
  bool add_eos = true;  // EOS last, with the loss of the last piece
  // A row of given token ids (pretokenized): never cut into completion chunks, even where an empty
  // `type` reads it as completion; one longer than sequence_len meets excess_length_strategy.
  bool given_ids = false;
  // A prompt then its response, which Axolotl's instruction strategies (alpaca, user-defined)
  // tokenize in two calls, each truncated at sequence_len tokens (its max_length): the prompt
  // keeps its first sequence_len tokens, BOS included, the response its first sequence_len - 1
  // (the call's BOS dropped), with EOS only when that call ended below sequence_len. Only rows
  // kept past sequence_len (test_datasets' eval_sequence_len) show it: longer ones are dropped.
  bool two_calls = false;
};

// The common shapes: all text trained (completion), or a prompt then its response (alpaca).
// Empty text tokenizes to nothing, as in Axolotl: no BOS before an empty prompt, no EOS after an
// empty response, and an empty completion no token at all.
Document text_document(std::string text);
Document prompt_response_document(std::string prompt, std::string response);

// The files `spec` reads, in reading order: the file, its data_files, or a directory's files of
// the split spec.split names (io/dataset_directory.h; without data files HF reads, its text files).
// Throws UserError when the path does not exist, or the split is bad or absent (the split of a
// file or of data_files is train).
std::vector<std::string> dataset_source_files(const DatasetSpec& spec);
// A .json or .jsonl data file, by its name (either holds one array of rows or a row per line).
bool is_json_file(const std::string& path);

// Every document of `spec`, in file order. Throws UserError ("<file>:<line>: <what>") on bad JSON,
// a missing field or a wrong type, and when the dataset holds no document at all.
std::vector<Document> load_documents(const DatasetSpec& spec, const Tokenizer& tokenizer);

// One record of a .jsonl file (a line) or of a .json array (an element), for the loaders of each
// row format (io/chat_template.h, io/raw_rows.h).
struct JsonRecord {
  nlohmann::ordered_json value;  // keys in file order (a chat template may write them out)
  int64_t line;  // 1-based, where the record starts in its file
};

// The records of a dataset file of `spec` that holds rows: JSON, read as HF's json loader reads
// one whatever its name (one array of rows, or a row per line; an array of texts is rows
// {"text": x}), or Parquet (.parquet or ds_type parquet: io/parquet.h, `line` its row number).
// Throws UserError ("<file>:<line>: invalid JSON: ...") on bad JSON, and on a file ds_type or its
// name makes text (.txt), another table or a compressed file.
std::vector<JsonRecord> read_json_dataset_file(const std::string& path, const DatasetSpec& spec);

// The standard Alpaca prompt; the variant without "### Input:" when `input` is empty.
std::string alpaca_prompt(const std::string& instruction, const std::string& input);

}  // namespace llm
