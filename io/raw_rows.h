// Rows that carry their own formatting (Axolotl's template-free and pre-tokenized datasets):
//   input_output: {"segments": [{"text": "...", "label": true|false}, ...]}; labelled segments
//     train, the others are Loss::prompt (Axolotl trains them only with train_on_inputs). BOS
//     first, no EOS. Axolotl itself adds neither and leaves both to the user's text, but our
//     tokenizers read special tokens' names in user text as plain text (so no one forges a
//     marker), so a user cannot write BOS there: we add it, as every other type does. An EOS
//     stays the user's choice: a row may well end mid-turn.
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
void load_input_output_file(const std::string& path, std::vector<Document>& docs);
void load_pretokenized_file(const std::string& path, std::vector<Document>& docs);

}  // namespace llm
