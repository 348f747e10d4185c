// ORPO pairs (rl: orpo): Axolotl's one ORPO strategy writes each row as a prompt with a chosen and
// a rejected response, and TRL's ORPOTrainer tokenizes them (its own rule, older than DPO's).
//   chat_template.argilla: "chosen" and "rejected" are lists of messages, user and assistant in
//     turn (chosen's count even); "system" (when non-empty) and "prompt" are optional. The prompt's
//     messages: the system turn, then for each of chosen's turns the user's (chosen[2i].content,
//     or the row's "prompt" for every user turn when it has one) and, but for the last turn, the
//     assistant's (chosen[2i + 1].content); rendered by the chat template with the generation
//     prompt. A response: the same messages and the last of chosen (rejected) as the assistant's,
//     rendered, less the prompt's text at its start. A message's role is its place, not its
//     "role" field, as Axolotl's parser reads it.
//   Axolotl's length rule drops a pair as for DPO (io/preference.h).
//   TRL's ORPO tokenization: the prompt alone and the prompt with each response, no special
//     tokens; a response's ids are the whole's past the prompt's count, one fewer when the prompt's
//     ids are not a prefix of the whole's (a token merged across the border); BOS before each
//     prompt part that does not start with it, EOS after each response that does not end in it.
//     When a prompt part and the longer answer exceed max_length, each such answer keeps its
//     first max_length - longer ids (a Python slice: a negative count cuts from the end; TRL
//     1.9's rule, which leaves a pair near max_length whole, up to BOS and EOS past it: here a
//     sequence then ends at max_length, as a row holds). No prompt is cut: Axolotl 0.19 passes
//     no max_prompt_length to TRL 1.9's ORPO, which has none. A pair left with an
//     empty response is dropped: TRL would average its log-likelihood over no token (NaN). TRL stops on a pair whose two prompt parts differ by more than their last token; here
//     each response keeps its own.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/jinja.h"
#include "io/preference.h"
#include "io/tokenizer.h"

namespace llm {

bool is_orpo_type(const std::string& type);
const std::vector<std::string>& orpo_types();

// A row's texts under `chat_template`. UserError ("<where>...") on a row without the fields it reads.
PreferenceText orpo_pair(const jinja::Template& chat_template, const nlohmann::ordered_json& row,
                         const Tokenizer& tokenizer, const std::string& where);

// The chosen and the rejected example, the prompt parts' labels kIgnoreIndex; nullopt when the
// length rule drops the pair or a response is cut away. TRL's name: its CPOTrainer (rl: simpo)
// tokenizes pairs by the same tokenize_row.
std::optional<PreferenceExamples> tokenize_row(const PreferenceText& text, const Tokenizer& tokenizer,
                                                int64_t max_length);

}  // namespace llm
