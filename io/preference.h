// Preference pairs (rl: dpo / ipo): each row of a dataset becomes a prompt with a chosen and a
// rejected response, as Axolotl's DPO strategies write them, and then two examples, tokenized as
// TRL's DPOTrainer tokenizes them.
//   llama3.{default, argilla_chat, icr, intel, prompt_pairs, ultra} and
//   chatml.{default, argilla_chat, icr, intel, prompt_pairs, ultra}: the prompt is one user turn
//     (after a system turn when the row has a non-empty "system"), ending in the assistant's
//     header; each response is followed by the end-of-turn marker (<|eot_id|> / <|im_end|>). The
//     prompt's field: default the first of prompt, input, question, instruction (chatml.argilla,
//     its older name, too);
//     icr input; intel question; prompt_pairs and ultra prompt; argilla_chat chosen[0].content.
//     The responses: chosen / rejected (default: else chosen_response /
//     rejected_response) strings; ultra and argilla_chat take chosen[1].content, rejected[1].content.
//   chat_template.default: field_messages (a list of messages, or one string: a user turn) under
//     the chat template with the generation prompt; field_chosen / field_rejected (a string, a
//     message, or a list whose last message is the response) each rendered after a dummy user
//     turn, cut from where its content starts, right-stripped. chat_template.argilla_chat: the
//     prompt is field_chosen's messages but the last, the responses the last of each list.
//   The markers are the template's special tokens; text from a row stays text (io/chat_jinja.h).
//   passthrough.default and user_defined.default: the row's own texts or formats (io/preference_formats.h).
// Axolotl drops a pair whose prompt, tokenized alone without BOS/EOS, holds more than
// sequence_len tokens together with either response (each tokenized alone). The rest is tokenized
// as TRL does: BOS, then the prompt, and BOS, then the prompt and each response as one text (so a
// token may span their border), EOS added to a response that does not end in it; the prompt's
// length is the shortest common prefix of its ids with the two; each whole sequence is cut to
// max_length (TRL's keep_start: BOS and EOS may pass it), and a pair whose prompt fills max_length
// is dropped.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/data_config.h"
#include "io/examples.h"
#include "io/jinja.h"
#include "io/tokenizer.h"

namespace llm {

// Text a template wrote carries jinja::kTemplateSource; text from the row any other source.
struct PreferenceText {
  jinja::Text prompt, chosen, rejected;
};

// The dataset types above.
bool is_preference_type(const std::string& type);
const std::vector<std::string>& preference_types();

// One PreferenceText per row of the .json / .jsonl file `path`, appended to `out` (an ORPO type's
// rows too: io/orpo.h). UserError ("<file>:<line>: <what>") on a row without the fields its type reads.
void load_preference_file(const std::string& path, const DatasetSpec& spec, const Tokenizer& tokenizer,
                          std::vector<PreferenceText>& out);

// Axolotl's length rule: the prompt and either response, each tokenized alone without BOS/EOS,
// hold more than max_length tokens together.
bool exceeds_sequence_len(const PreferenceText& text, const Tokenizer& tokenizer, int64_t max_length);

// The chosen and the rejected example of a pair: the prompt's labels kIgnoreIndex, each
// response's its tokens. nullopt when Axolotl's length rule drops the pair (max_length its
// sequence_len) or the prompt fills max_length.
struct PreferenceExamples {
  Example chosen, rejected;
};
std::optional<PreferenceExamples> tokenize_preference(const PreferenceText& text, const Tokenizer& tokenizer,
                                                      int64_t max_length);

// Every pair of `spec` (the rows of its split), tokenized (an ORPO type's as io/orpo.h, with
// max_prompt_length), appended to `out` as two examples, chosen then rejected; stats count pairs
// (documents) and pairs dropped.
// The config's sequence_len is max_length, its excess_length_strategy Axolotl's for rl rows
// (io/preference_rows.h's fit_excess_length), its pair_tokenizing TRL's rule.
void append_preference_examples(const DatasetSpec& spec, const Tokenizer& tokenizer, const DataConfig& config,
                                std::vector<Example>& out, ExampleStats& stats);

}  // namespace llm
