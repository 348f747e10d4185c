// Examples: tokenized documents, one training example each, as Axolotl keeps SFT data (never
// split across rows; completion text longer than sequence_len split into chunks, as Axolotl's
// completion strategy does; other long examples dropped or truncated by excess_length_strategy).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "io/data_config.h"
#include "io/documents.h"
#include "io/tokenizer.h"

namespace llm {

// kIgnoreIndex (engine/ops.h): a label that takes no loss, as HF's -100.

// The targets of an example whose labels are labels[0, n): f(label) for each set label but the
// first, in order (nothing in the example precedes its first token; only a packed row's previous
// example may predict it, RowLayout). The no-target filter, the start-up summary and the unigram
// baseline all count with it.
template <typename F>
void for_each_target(const int32_t* labels, int64_t n, F&& f) {
  for (int64_t i = 1; i < n; i++)
    if (labels[i] != kIgnoreIndex) f(labels[i]);
}

// HF's (input_ids, labels): labels[i] is tokens[i] where that token takes loss, else
// kIgnoreIndex. Batches apply the next-token shift (the target at i is labels[i + 1]).
struct Example {
  std::vector<int32_t> tokens;
  std::vector<int32_t> labels;
  bool desirable = false;  // rl: kto, a row whose completion is labelled desirable (io/kto.h)
};

// BOS, the pieces, EOS (as the document asks). A special segment whose name the tokenizer
// lacks is a UserError naming it; `where` names the dataset in that message. `max_length` (0:
// none) cuts a prompt/response document as Axolotl's two tokenizer calls cut it (Document::two_calls).
Example tokenize_document(const Document& doc, const Tokenizer& tokenizer, bool train_on_inputs,
                          const std::string& where, size_t max_length = 0);

// What make_examples did, for the start-up summary.
struct ExampleStats {
  int64_t documents = 0;  // read from the datasets
  int64_t chunked = 0;    // completion documents split into sequence_len chunks
  int64_t dropped = 0;    // longer than sequence_len (excess_length_strategy drop) or shorter than min_sample_len
  int64_t dropped_short = 0;  // of those, the ones shorter than min_sample_len
  int64_t truncated = 0;  // longer than sequence_len, excess_length_strategy truncate
  int64_t no_targets = 0;  // dropped because no token takes loss
};

// Every document of `spec` tokenized and fitted to config.sequence_len, appended to `out`. With
// `placeholders`, a row the filters drop (too long, too short, no target) stays as an empty
// example: Axolotl shuffles its rows before it filters them, so the merged order is drawn over
// them too (load_examples asks for them; split_items then leaves them out).
void append_examples(const DatasetSpec& spec, const std::vector<Document>& docs,
                     const Tokenizer& tokenizer, const DataConfig& config,
                     std::vector<Example>& out, ExampleStats& stats, bool placeholders = false);

}  // namespace llm
