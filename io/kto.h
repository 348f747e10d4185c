// Unpaired preferences (rl: kto): each row of a dataset is a prompt, one completion and a label
// (desirable or not), as Axolotl's KTO strategies write them, tokenized as TRL's KTOTrainer
// tokenizes them.
//   llama3.{argilla, argilla_chat, intel, prompt_pairs, ultra} and chatml.{the same}: the prompt
//     is one user turn (after a system turn when the row has a non-empty "system"), ending in the
//     assistant's header, the completion followed by the end-of-turn marker. The user turn's
//     field: argilla instruction, intel question, prompt_pairs and ultra prompt; the completion
//     the row's "completion" string. argilla_chat reads "completion" as a conversation: the
//     prompt is every message but the last, each under its role's header, then the assistant's
//     header; the completion is the last message (Axolotl 0.19, both markups).
//   The label is the row's "label": true or false (or 1 or 0, as TRL's bool tensor reads them).
//   passthrough.default and user_defined.default: the row's own texts or formats (io/preference_formats.h).
// Axolotl drops a row whose prompt and completion, each tokenized alone without BOS/EOS, hold more
// than sequence_len tokens together. TRL then adds EOS to a completion that does not end in it,
// tokenizes the prompt and the prompt with the completion (BOS first), and takes the completion's
// ids as those past the prompt's length; it drops a row whose prompt ids fill max_length.
//
// TRL's KL estimate pairs every prompt with another row's completion: within each block of
// per_device_train_batch_size rows in the order it trains them, row i takes row i - 1's (the
// first the last's). Both sequences are cut to max_length (keep_start) only when a batch is made.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/data_config.h"
#include "io/dataset.h"
#include "io/jinja.h"
#include "io/tokenizer.h"

namespace llm {

bool is_kto_type(const std::string& type);
const std::vector<std::string>& kto_types();

// A row's texts as its type's transform writes them (markers carry jinja::kTemplateSource).
struct KtoText {
  jinja::Text prompt, completion;
  bool desirable = false;
};

// One KtoText per row of the .json / .jsonl file `path`, appended to `out`. UserError
// ("<file>:<line>: <what>") on a row without the fields its type reads.
void load_kto_file(const std::string& path, const DatasetSpec& spec, std::vector<KtoText>& out);

// Every row of `spec` (its split) kept by the length rule, as two examples appended to `out`: its
// prompt's ids (no targets), then its completion's ids (each a target), both marked desirable or
// not; stats count rows (documents) and rows dropped.
// excess_length_strategy: Axolotl's for rl rows (io/preference_rows.h's fit_excess_length).
void append_kto_examples(const DatasetSpec& spec, const Tokenizer& tokenizer, int64_t sequence_len,
                         std::vector<Example>& out, ExampleStats& stats, const std::string& excess_length_strategy = "drop");

// kl_source[r] for the rows `order` (in training order): blocks of `block` rows, each rotated by
// one (row order[k] takes the completion of order[k - 1], the block's first its last's).
void rotate_completions(const std::vector<int64_t>& order, int64_t block, std::vector<int64_t>& kl_source);

// From rows cached as (prompt, completion) example pairs (2r, 2r + 1): row r's training sequence
// (its prompt and completion) at 2r and its KL sequence (its prompt, row kl_source[r]'s completion)
// at 2r + 1, each cut to max_length, the prompt taking no loss, both marked as row r.
ExampleSet kto_sequences(const ExampleSet& prompts_and_completions, const std::vector<int64_t>& kl_source,
                         int64_t max_length);

}  // namespace llm
