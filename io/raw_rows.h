// Rows that carry their own formatting (Axolotl's template-free and pre-tokenized datasets):
//   input_output: {"segments": [{"text": "...", "label": true|false}, ...]}; labelled segments
//     train, the others are Loss::prompt (Axolotl trains them only with train_on_inputs). As
//     Axolotl tokenizes them (transformers without add_special_tokens): no BOS or EOS added, and
//     a special token's name in a segment is that token, so a row holds the template markers
//     its author writes ("<|begin_of_text|>", "<|eot_id|>"), as Axolotl's template-free format
//     intends; the other types read names in user text as plain text.
//   pretokenized: {"input_ids": [...], "labels": [...], "attention_mask": [...]}; labels (default:
//     input_ids) hold -100 (no loss) or the token id itself; tokens whose attention_mask is 0 are
//     dropped. One ids piece per run of trained or untrained tokens; no BOS or EOS added (the row
//     is complete). Ids must be >= 0; the vocabulary check comes in tokenize_document.
// Both take the rows of a dataset file (read_json_dataset_file), and throw UserError
// ("<file>:<line>: <what>") on a row of another shape. Rows with input_ids, attention_mask and
// labels columns are pretokenized whatever the dataset's type, as Axolotl takes them
// (load_documents).
#pragma once
#include <string>
#include <vector>

#include "io/documents.h"

namespace llm {

// One document per row of `records` (read from `path`, which messages name), appended to `docs`.
void add_input_output_rows(const std::string& path, const std::vector<JsonRecord>& records, std::vector<Document>& docs);
void add_pretokenized_rows(const std::string& path, const std::vector<JsonRecord>& records, std::vector<Document>& docs);

}  // namespace llm
