// Reward-model pairs (Axolotl's reward_model with datasets of type bradley_terry.chat_template):
// each row's "system" (optional; null: none; "" an empty system turn, as Axolotl's chat_template
// strategy inserts the field), "input", "chosen" and "rejected" strings become two
// conversations, [system,] user input, assistant response, each rendered and
// tokenized whole under the dataset's chat template as a chat_template row (io/chat_template.h)
// and cut to sequence_len tokens (Axolotl's strategy keeps the start). Nothing of them is a
// target: the trainer scores each sequence at its last non-pad token (TRL's RewardTrainer).
#pragma once
#include <string>
#include <vector>

#include "io/data_config.h"
#include "io/examples.h"
#include "io/tokenizer.h"

namespace llm {

// Every pair of `spec` (the rows of its split), appended to `out` as two examples, chosen then
// rejected; stats count pairs (documents) and truncated sequences. UserError
// ("<file>:<line>: <what>") on a row without its strings.
void append_bradley_terry_examples(const DatasetSpec& spec, const Tokenizer& tokenizer, const DataConfig& config,
                                   std::vector<Example>& out, ExampleStats& stats);

}  // namespace llm
