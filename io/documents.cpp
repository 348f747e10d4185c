// defines: text_document, prompt_response_document, dataset_source_files, load_documents,
// read_json_dataset_file, alpaca_prompt
#include "io/documents.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <nlohmann/json.hpp>

#include "engine/user_error.h"
#include "io/arrow_ipc.h"
#include "io/chat_template.h"  // add_chat_template_rows
#include "io/csv.h"
#include "io/dataset_directory.h"
#include "io/dataset_split.h"
#include "io/decompress.h"  // read_data_file, read_utf8_data_file, without_compression_suffix
#include "io/ends_with.h"
#include "io/json_text.h"
#include "io/parquet.h"
#include "io/raw_rows.h"       // add_input_output_rows, add_pretokenized_rows
#include "io/user_defined.h"

namespace llm {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;  // keys in file order, as Python reads them

// nlohmann's message is "[json.exception.parse_error.101] parse error at line L, column C: what",
// or "[json.exception.out_of_range.406] what" for a number too large for a double (1e999); the
// file and line are ours to print, so keep only "what".
std::string parse_error_detail(const json::exception& e) {
  std::string msg = e.what();
  size_t column = msg.find("column ");
  size_t colon = column == std::string::npos ? column : msg.find(": ", column);
  if (colon != std::string::npos) return msg.substr(colon + 2);
  size_t bracket = msg.find("] ");
  return bracket == std::string::npos ? msg : msg.substr(bracket + 2);
}

int64_t line_at(const std::string& text, size_t offset) {
  offset = std::min(offset, text.size());
  return 1 + std::count(text.begin(), text.begin() + static_cast<ptrdiff_t>(offset), '\n');
}

// Start line of each element of the top-level array in `text`, which already parsed as JSON;
// nlohmann keeps no positions, and a bad record should be reported at its own line.
std::vector<int64_t> array_element_lines(const std::string& text) {
  std::vector<int64_t> lines;
  int64_t line = 1;
  int depth = 0;
  bool in_string = false, escaped = false, element_next = false;
  for (char c : text) {
    if (c == '\n') line++;
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    if (element_next && c != ']') lines.push_back(line);
    element_next = false;
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      element_next = ++depth == 1;
    } else if (c == ']' || c == '}') {
      depth--;
    } else if (c == ',' && depth == 1) {
      element_next = true;
    }
  }
  return lines;
}

// nlohmann takes a NUL byte for the end of its input: a line "a\0" would be "unexpected end of
// input" and {"text": "ok"}\0junk would be read as its head alone. JSON text never holds one.
UserError nul_byte_error(const std::string& path, int64_t line, size_t column) {
  return UserError(path + ":" + std::to_string(line) + ": invalid JSON: a NUL byte at column " +
                   std::to_string(column) + " (JSON holds none; in a string it is written \\u0000)");
}

std::vector<JsonRecord> read_json_lines(const std::string& path, const std::string& text) {
  std::vector<JsonRecord> records;
  std::istringstream in(text);
  std::string line;
  for (int64_t number = 1; std::getline(in, line); number++) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (size_t at = line.find('\0'); at != std::string::npos) throw nul_byte_error(path, number, at + 1);
    if (json_nested_deeper_than(line))
      throw UserError(path + ":" + std::to_string(number) + ": invalid JSON: nested deeper than " +
                      std::to_string(kMaxJsonDepth) + " levels");
    try {
      records.push_back({json::parse(line), number});
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number
      throw UserError(path + ":" + std::to_string(number) +
                      ": invalid JSON: " + parse_error_detail(e));
    }
  }
  return records;
}

// HF's json loader takes an array whose opening bytes show no object before the first string
// (its test of the first 100 bytes) for a list of texts: each element becomes a row {"text": x}.
bool array_of_texts(const std::string& text) {
  const std::string head = text.substr(0, 100);
  return head.substr(0, head.find('"')).find('{') == std::string::npos;
}

std::vector<JsonRecord> read_json_array(const std::string& path, const std::string& text) {
  if (size_t at = text.find('\0'); at != std::string::npos)  // rfind's npos + 1: the first line
    throw nul_byte_error(path, line_at(text, at), at - (text.rfind('\n', at) + 1) + 1);
  if (json_nested_deeper_than(text))
    throw UserError(path + ": invalid JSON: nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    // e.byte is 1-based: the position of the character that failed.
    throw UserError(path + ":" + std::to_string(line_at(text, e.byte == 0 ? 0 : e.byte - 1)) +
                    ": invalid JSON: " + parse_error_detail(e));
  } catch (const json::exception& e) {  // out_of_range: a number too large; no position given
    throw UserError(path + ": invalid JSON: " + parse_error_detail(e));
  }
  if (!doc.is_array())
    throw UserError(path + ":1: expected a JSON array of records, got a JSON " + doc.type_name());
  std::vector<int64_t> lines = array_element_lines(text);
  const bool texts = array_of_texts(text);
  std::vector<JsonRecord> records;
  for (size_t i = 0; i < doc.size(); i++)
    records.push_back({texts ? json{{"text", std::move(doc[i])}} : std::move(doc[i]), lines.at(i)});
  return records;
}

// A JSON data file as HF's json loader reads it, whatever its name: a UTF-8 BOM dropped, text
// opening with '[' is one array of rows, anything else JSON Lines, and when those fail, one array
// after leading white space (the loader's pandas fallback).
std::vector<JsonRecord> read_json_records(const std::string& path, std::string text) {
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);
  if (text.compare(0, 1, "[") == 0) return read_json_array(path, text);
  try {
    return read_json_lines(path, text);
  } catch (const UserError&) {
    const size_t first = text.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && text[first] == '[') return read_json_array(path, text);
    throw;
  }
}

// Which absent values a string field takes as "". A null is Python's None, which Axolotl's
// strategies read as empty text (`if not prompt`), so a text or a response may be null.
enum class Field {
  required,  // missing or null: an error
  nullable,  // missing: an error; null: ""
  optional,  // missing or null: ""
};

std::string string_field(const std::string& path, const JsonRecord& r, const char* key, Field field,
                         const char* expected) {
  std::string where = path + ":" + std::to_string(r.line) + ": ";
  if (!r.value.is_object())
    throw UserError(where + "expected a JSON object " + expected + ", got a JSON " +
                    r.value.type_name());
  auto it = r.value.find(key);
  if (it != r.value.end() && it->is_null() && field != Field::required) return "";
  if (it == r.value.end()) {
    if (field == Field::optional) return "";
    throw UserError(where + "missing field \"" + key + "\"; expected a JSON object " + expected);
  }
  if (!it->is_string())
    throw UserError(where + "field \"" + key + "\" is " + json_kind(*it) +
                    ", expected a string");
  return it->get<std::string>();
}

// HF's JSON loader gives every row every column a file has: a row without a key that another row
// has holds None there, as a null does.
bool has_column(const std::vector<JsonRecord>& records, const std::string& key) {
  return std::any_of(records.begin(), records.end(),
                     [&](const JsonRecord& r) { return r.value.is_object() && r.value.contains(key); });
}

// A text or a response: null, or missing where the file has the column, is empty text (Axolotl
// then makes no row of a text, and no EOS after a response); missing from every row, an error.
Field text_field(const std::vector<JsonRecord>& records, const std::string& key) {
  return has_column(records, key) ? Field::optional : Field::nullable;
}

// Lines holding only "%" separate documents; a file without them is a single document.
void split_on_percent_lines(const std::string& text, std::vector<Document>& docs) {
  std::string doc;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    end = end == std::string::npos ? text.size() : end + 1;
    std::string line = text.substr(pos, end - pos);
    if (line == "%\n" || line == "%\r\n" || line == "%") {
      if (!doc.empty()) docs.push_back(text_document(std::move(doc)));
      doc.clear();
    } else {
      doc += line;
    }
    pos = end;
  }
  if (!doc.empty()) docs.push_back(text_document(std::move(doc)));
}

// A .txt file as HF's `text` loader reads it for Axolotl: a row per line, read with Python's
// universal newlines (\r\n, \r and \n each end a line), the line break dropped. An empty line
// is a row too (a split's slice counts it), which tokenizes to nothing.
void split_into_lines(const std::string& text, std::vector<Document>& docs) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = std::min(text.find_first_of("\r\n", pos), text.size());
    docs.push_back(text_document(text.substr(pos, end - pos)));
    pos = end + (text.compare(end, 2, "\r\n") == 0 ? 2 : 1);
  }
}

enum class FileReading { json, parquet, arrow, csv, text_lines, text_documents };

// How a dataset file is read, as Axolotl's get_dataset_type picks HF's loader: the entry's ds_type
// when given, else by the file's name less a .gz or .zst suffix (HF's loaders open such files
// decompressed, read_data_file), .parquet Parquet, .txt text lines and JSON otherwise; a
// completion dataset reads other names as text documents (fortune files). Other tables and
// compressions, which Axolotl reads through their own loaders, are refused: as text they would
// train on their bytes.
FileReading file_reading(const std::string& path, const DatasetSpec& spec) {
  const std::string name = without_compression_suffix(path);
  if (spec.ds_type == "parquet" || (spec.ds_type.empty() && ends_with(name, ".parquet"))) return FileReading::parquet;
  if (spec.ds_type == "arrow" || (spec.ds_type.empty() && ends_with(name, ".arrow"))) return FileReading::arrow;
  if (spec.ds_type == "csv" || (spec.ds_type.empty() && ends_with(name, ".csv"))) return FileReading::csv;
  for (const char* format : {".parquet", ".arrow", ".csv"})
    if (ends_with(name, format))  // ds_type named another loader
      throw UserError(path + ": ds_type: " + spec.ds_type + ", but a " + format + " file holds " + (format + 1) +
                      " rows; drop ds_type (or give ds_type: " + (format + 1) + ")");
  for (const char* format : {".tsv", ".bz2", ".xz", ".zip", ".tar"})
    if (ends_with(name, format))
      throw UserError(path + ": a " + format + " file is not read here; expected plain text, JSON, Parquet, Arrow or "
                             "CSV rows, gzip or zstd compressed or not (convert it to JSONL)");
  if (spec.ds_type == "json" || (spec.ds_type.empty() && is_json_file(name))) return FileReading::json;
  if (spec.ds_type == "text" || ends_with(name, ".txt")) return FileReading::text_lines;
  return spec.type == "completion" ? FileReading::text_documents : FileReading::json;
}

// A completion dataset's text file: a document per line (.txt, ds_type text) or per %-separated
// entry (fortune files); false when the file holds rows instead.
bool load_completion_text(const std::string& path, const DatasetSpec& spec, std::vector<Document>& docs) {
  const FileReading reading = file_reading(path, spec);
  if (reading != FileReading::text_lines && reading != FileReading::text_documents) return false;
  const std::string text = read_utf8_data_file(path, "a dataset file");  // (JSON's reader names a NUL's line)
  if (const size_t nul = text.find('\0'); nul != std::string::npos)
    throw UserError(path + ": expected text, got binary data (a NUL byte at offset " + std::to_string(nul) + ")");
  reading == FileReading::text_lines ? split_into_lines(text, docs) : split_on_percent_lines(text, docs);
  return true;
}

void add_completion_rows(const std::string& path, const std::vector<JsonRecord>& records, const DatasetSpec& spec,
                         std::vector<Document>& docs) {
  const std::string& field = spec.field;
  const std::string expected = "with a \"" + field + "\" string";
  const Field text_presence = text_field(records, field);
  for (const JsonRecord& r : records)
    docs.push_back(text_document(string_field(path, r, field.c_str(), text_presence, expected.c_str())));
}

void add_alpaca_rows(const std::string& path, const std::vector<JsonRecord>& records, std::vector<Document>& docs) {
  const char* expected = "with \"instruction\", \"input\" and \"output\" strings";
  const Field output_presence = text_field(records, "output");
  for (const JsonRecord& r : records) {
    std::string instruction = string_field(path, r, "instruction", Field::required, expected);
    std::string input = string_field(path, r, "input", Field::optional, expected);
    std::string output = string_field(path, r, "output", output_presence, expected);
    docs.push_back(prompt_response_document(alpaca_prompt(instruction, input), std::move(output)));
  }
}

void add_user_defined_rows(const std::string& path, const std::vector<JsonRecord>& records, const DatasetSpec& spec,
                           std::vector<Document>& docs) {
  const UserDefinedFormat& f = spec.user_defined;
  const std::string expected = "with a \"" + f.field_instruction + "\" string";
  // A row without the system field, in a file whose other rows have it, holds None (no system
  // text); system_prompt stands in only for a file without that column.
  const bool system_column = has_column(records, f.field_system);
  for (const JsonRecord& r : records) {
    const std::string instruction = string_field(path, r, f.field_instruction.c_str(), Field::required, expected.c_str());
    const std::string input = string_field(path, r, f.field_input.c_str(), Field::optional, expected.c_str());
    std::string output = string_field(path, r, f.field_output.c_str(), Field::optional, expected.c_str());
    const std::string system = system_column
                                   ? string_field(path, r, f.field_system.c_str(), Field::optional, expected.c_str())
                                   : f.system_prompt;
    docs.push_back(prompt_response_document(user_defined_prompt(f, system, instruction, input), std::move(output)));
  }
}

}  // namespace

bool is_json_file(const std::string& path) {
  const std::string name = without_compression_suffix(path);
  return ends_with(name, ".jsonl") || ends_with(name, ".json");
}

// Axolotl's _tokenize returns nothing for empty text, neither BOS nor EOS: an empty completion
// row yields no example, and an empty response adds no EOS (so with train_on_inputs off the
// example has no target and is dropped, as Axolotl drops it).
Document text_document(std::string text) {
  Document doc;
  doc.add_bos = doc.add_eos = !text.empty();
  if (!text.empty()) doc.pieces.push_back({Piece::Kind::text, std::move(text), {}, Loss::trained});
  return doc;
}

Document prompt_response_document(std::string prompt, std::string response) {
  Document doc;
  doc.two_calls = true;
  doc.add_bos = !prompt.empty();  // an empty prompt: no BOS either, Axolotl strips the response's
  doc.add_eos = !response.empty();
  doc.pieces.push_back({Piece::Kind::text, std::move(prompt), {}, Loss::prompt});
  if (!response.empty()) doc.pieces.push_back({Piece::Kind::text, std::move(response), {}, Loss::trained});
  return doc;
}

std::vector<std::string> dataset_source_files(const DatasetSpec& spec) {
  std::error_code ec;
  const std::optional<RowSlice> slice = parse_split(spec.split);
  if (!slice)
    throw UserError(spec.path + ": split '" + spec.split + "': expected a split name or a slice of one, train[A:B]");
  const bool directory = spec.data_files.empty() && fs::is_directory(spec.path, ec);
  if (!directory && slice->split != "train")
    throw UserError(spec.path + ": split '" + spec.split + "': expected train or a slice of it (data files have one "
                    "split, train)");
  if (fs::is_regular_file(spec.path, ec)) return {spec.path};
  if (!spec.data_files.empty()) {
    std::vector<std::string> files;
    for (const std::string& name : spec.data_files) {
      const fs::path file = fs::path(spec.path) / name;
      if (!fs::is_regular_file(file, ec))
        throw UserError(file.string() + ": expected a data file named by datasets: data_files, got none");
      files.push_back(file.string());
    }
    return files;
  }
  if (!directory)
    throw UserError(spec.path +
                    ": dataset path is neither a file nor a directory (datasets: path)");
  if (std::optional<std::vector<std::string>> files = directory_split_files(spec.path, slice->split, true)) return *files;
  if (slice->split != "train")
    throw UserError(spec.path + ": split '" + spec.split + "': expected train or a slice of it (a directory of text "
                    "documents has one split, train)");
  // No data file HF's datasets reads: llm_train's own reading, each text file a document source.
  fs::directory_iterator dir(spec.path, ec);
  if (ec) throw UserError(spec.path + ": cannot list dataset directory: " + ec.message());
  std::vector<std::string> files;
  for (const fs::directory_entry& entry : dir) {
    std::string name = entry.path().filename().string();
    if (entry.is_symlink() || !entry.is_regular_file() || name[0] == '.') continue;
    if (ends_with(name, ".dat") || ends_with(name, ".u8")) continue;
    files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<Document> load_documents(const DatasetSpec& spec, const Tokenizer& tokenizer) {
  const char* const types[] = {"completion", "alpaca", "user_defined", "chat_template", "input_output",
                               "pretokenized"};
  if (std::find(std::begin(types), std::end(types), spec.type) == std::end(types))
    throw UserError(spec.path + ": unknown dataset type \"" + spec.type + "\" (expected "
                    "completion, alpaca, a user-defined format, chat_template, input_output or pretokenized)");
  std::vector<Document> docs;
  for (const std::string& file : dataset_source_files(spec)) {
    if (spec.type == "completion" && load_completion_text(file, spec, docs)) continue;
    const std::vector<JsonRecord> records = read_json_dataset_file(file, spec);
    // Axolotl's get_dataset_wrapper: rows with input_ids, attention_mask and labels columns go in
    // as they are, whatever the type (its documented way to give them is `type:` left empty).
    const bool tokenized = has_column(records, "input_ids") && has_column(records, "attention_mask") &&
                           has_column(records, "labels");
    if (spec.type == "pretokenized" || tokenized) add_pretokenized_rows(file, records, docs);
    else if (spec.type == "completion") add_completion_rows(file, records, spec, docs);
    else if (spec.type == "alpaca") add_alpaca_rows(file, records, docs);
    else if (spec.type == "user_defined") add_user_defined_rows(file, records, spec, docs);
    else if (spec.type == "chat_template") add_chat_template_rows(file, records, spec, tokenizer, docs);
    else add_input_output_rows(file, records, docs);
  }
  const auto [first, last] = slice_rows(*parse_split(spec.split), docs.size());  // (dataset_source_files checked it)
  docs = std::vector<Document>(std::make_move_iterator(docs.begin() + first), std::make_move_iterator(docs.begin() + last));
  if (docs.empty())
    throw UserError(spec.path + ": the " + spec.type + " dataset holds no documents" +
                    (spec.split == "train" ? "" : " in split " + spec.split));
  return docs;
}

std::vector<JsonRecord> read_json_dataset_file(const std::string& path, const DatasetSpec& spec) {
  const FileReading reading = file_reading(path, spec);
  if (reading == FileReading::parquet) return read_parquet_rows(path);
  if (reading == FileReading::arrow) return read_arrow_rows(path);
  if (reading == FileReading::csv) return read_csv_rows(path);
  if (reading != FileReading::json)
    throw UserError(path + ": " + (spec.ds_type == "text" ? "ds_type text" : "a .txt file") +
                    " holds rows of plain text; " + (std::strchr("aeiou", spec.type[0]) ? "an " : "a ") + spec.type +
                    " dataset needs JSON rows (.json, .jsonl, or ds_type: json)");
  return read_json_records(path, read_data_file(path, "a dataset file"));
}

std::string alpaca_prompt(const std::string& instruction, const std::string& input) {
  if (input.empty())
    return "Below is an instruction that describes a task. Write a response that appropriately "
           "completes the request.\n\n### Instruction:\n" + instruction + "\n\n### Response:\n";
  return "Below is an instruction that describes a task, paired with an input that provides "
         "further context. Write a response that appropriately completes the request.\n\n"
         "### Instruction:\n" + instruction + "\n\n### Input:\n" + input + "\n\n### Response:\n";
}

}  // namespace llm
