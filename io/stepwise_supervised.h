// Process-reward-model rows (Axolotl's process_reward_model with datasets of type
// stepwise_supervised, its StepwiseSupervisedPromptTokenizingStrategy after TRL's PRMTrainer):
// each row's "prompt" string, "completions" (a list of reasoning steps, strings) and "labels" (one
// per step: true/false, 1/0 or 1.0/0.0). The example is BOS (Llama's tokenizers have one), the
// prompt, then each step followed by the entry's step_separator ("\n"), every piece tokenized
// alone as HF's tokenizer call (add_special_tokens=False) tokenizes it: no BOS or EOS added, but
// a special token's name in the text ("<|eot_id|>") is that token. The prompt's tokens and each
// step's but its last take no label, each step's last token (its separator's) the step's label
// (with train_on_last_step_only only the last step's); the steps cut to max_completion_length
// tokens (0: no cut), then the whole to sequence_len.
// Labels are token classes (a token's own, not the next token's: RowLayout::token_labels).
#pragma once
#include <vector>

#include "io/data_config.h"
#include "io/examples.h"
#include "io/tokenizer.h"

namespace llm {

constexpr const char* kStepwiseSupervisedType = "stepwise_supervised";

// Every row of `spec` (the rows of its split) appended to `out` as one example; stats count rows
// (documents), truncated ones, and ones left without a label (dropped, as examples without a
// target are). UserError ("<file>:<line>: <what>") on a row without its fields, or with as many
// labels as steps.
void append_stepwise_examples(const DatasetSpec& spec, const Tokenizer& tokenizer, const DataConfig& config,
                              std::vector<Example>& out, ExampleStats& stats);

}  // namespace llm
