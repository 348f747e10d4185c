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
// Both read a .jsonl file or a .json array, and throw UserError ("<file>:<line>: <what>") on a
// row of another shape.
#pragma once
#include <string>
#include <vector>

#include "io/documents.h"

namespace llm {

// One document per row of `path`, appended to `docs`.
void load_input_output_file(const std::string& path, const DatasetSpec& spec, std::vector<Document>& docs);
void load_pretokenized_file(const std::string& path, const DatasetSpec& spec, std::vector<Document>& docs);

}  // namespace llm
