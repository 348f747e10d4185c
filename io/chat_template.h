// Chat templates (a dataset of `type: chat_template`): a conversation rendered into document
// pieces as Axolotl's ChatTemplateStrategy renders and masks it.
//   llama3: Meta's Llama 3 Instruct template (Axolotl's `chat_template: llama3`):
//     <|begin_of_text|> once, then per message
//     <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|>, CONTENT trimmed as Jinja's
//     `trim` (Python's str.strip: ASCII and Unicode whitespace).
//   chatml: <|im_start|>ROLE\nCONTENT<|im_end|>\n per message, CONTENT as given.
// The markers are special pieces, never read from user text: a "<|eot_id|>" typed in a message
// stays text. Loss, as Axolotl: a message whose role is in roles_to_train trains its content;
// other messages' content is Loss::prompt (Axolotl trains every turn with train_on_inputs);
// headers never train. The end-of-turn marker (<|eot_id|> / <|im_end|>) trains only as Axolotl
// finds turn ends: as EOS under train_on_eos, or as one of eot_tokens under train_on_eot (else
// train_on_eos); a marker that is neither never trains (Axolotl warns: end_of_turn_warnings).
// turn = with its message's content, all = always, none = never, last = only that of the last
// turn that trains (Axolotl passes over the others unless an option is all).
// Rows: a .jsonl file or .json array of objects whose `field_messages` key holds the list of
// messages (the first dropped when it is a system one and drop_system_message is set); message_property_mappings names a message's role and content keys; `roles` maps the
// dataset's role names onto ours (without it, Axolotl's defaults: human -> user, gpt ->
// assistant). Our own names (system, user, assistant, tool and the keys of `roles`) always stand
// for themselves; any other role is an error.
#pragma once
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/data_config.h"
#include "io/documents.h"
#include "io/tokenizer.h"
#include "io/train_detail.h"

namespace llm {

struct ChatMessage {
  std::string role;  // ours: after the dataset's `roles` mapping
  std::string content;
  // The message's own flag (datasets: message_field_training), over its role's: true trains its
  // content, false trains nothing of it, even with train_on_inputs (Axolotl's rule).
  std::optional<bool> train;
  // Its spans (datasets: message_field_training_detail, io/train_detail.h): without its own flag,
  // a non-empty list trains the message (an empty one does not); a message that trains then
  // trains only the tokens the spans train. The content is kept as a string for them.
  std::optional<std::vector<TrainDetail>> train_detail;
};

// How a conversation's turn is masked: the loss of its content (its own flag, else trained when
// its role is in roles_to_train, else Loss::prompt), and whether its end may be the one
// train_on_eos / train_on_eot `last` trains: Axolotl weighs only the turns that train (by their
// flag, roles_to_train or train_on_inputs) unless either option is `all`.
struct TurnMask {
  Loss content;
  bool counts_for_last;
  // A message with train_detail that trains: which tokens of its content, tokenized alone, train
  // (io/train_detail.h); the others take no loss. Empty otherwise.
  std::vector<bool> detail_tokens;
  bool has_detail = false;
};
// The key of a message's `property` (role, content) in the dataset: message_property_mappings'.
std::string mapped_key(const DatasetSpec& spec, const std::string& property);
// One message of a row: our role (after `roles`), its content (a string when content_is_string;
// else left empty, the caller reading the JSON) and its own training flag. UserError names
// `where` (file:line: ) and `which` (the message) on a bad message or an unmapped role.
ChatMessage read_message(const nlohmann::ordered_json& message, const DatasetSpec& spec, bool content_is_string,
                         const std::string& where, const std::string& which);

// `tokenizer` is needed only by messages with train_detail (their detail_tokens).
std::vector<TurnMask> turn_masks(const std::vector<ChatMessage>& messages, const DatasetSpec& spec,
                                 const Tokenizer* tokenizer = nullptr);

// How the tokens that close a chat's turns train, as Axolotl's two passes after each turn's content
// find them: end-of-turn tokens under train_on_eot, then EOS under train_on_eos.
struct TurnEnds {
  std::vector<int32_t> eot_ids;  // eot_tokens the template writes; EOS alone when none is given
  int32_t eos;
  std::string eot_option, eos_option;  // turn, last, all or none

  bool ends_turns(int32_t id) const;
  // The loss `option` gives a turn's end: the turn's own loss `turn` under turn, trained under all
  // (and under last when `last`, the end of the last turn that counts for it), none otherwise.
  static Loss loss_under(const std::string& option, Loss turn, bool last);
  // The loss of token `id` closing a turn whose content has loss `turn`; `last` when that turn is
  // the last that counts for `last`. A token both passes find trains if either trains it.
  Loss loss_of(int32_t id, Loss turn, bool last) const;
};

// The pieces of `messages` under spec.chat_template, with the losses that spec.roles_to_train and
// spec.train_on_eos give them; add_bos and add_eos false (the template writes its own markers).
// A message with train_detail has its content as token ids, each with its own loss (`tokenizer`
// then required). `ends`, the file's turn_ends (computed here when not given), gives the markers
// closing turns their loss; without a tokenizer they take none (rendering). Throws UserError
// naming spec.path on an unknown chat_template or train_on_eos.
Document chat_document(const std::vector<ChatMessage>& messages, const DatasetSpec& spec,
                       const Tokenizer* tokenizer = nullptr, const TurnEnds* ends = nullptr);

// The text the template renders for `messages` (markers written by name), as Jinja renders it
// without a generation prompt: chat_document's pieces joined.
std::string render_chat_text(const std::vector<ChatMessage>& messages,
                             const std::string& chat_template);

// Appends one document per row of `records`, read from the chat_template dataset file `path`: under the built-in
// template spec.chat_template names, or under spec.chat_template_source when the config resolved a
// Jinja one (io/chat_jinja.h: each message's other keys reach it too, as Axolotl passes them;
// null ones dropped, and content need not be a string). Throws UserError ("<file>:<line>:
// <what>") on a row without its list of messages, a message without role and content strings
// (built-in templates), or a role that `roles` does not map.
void add_chat_template_rows(const std::string& path, const std::vector<JsonRecord>& records, const DatasetSpec& spec,
                            const Tokenizer& tokenizer, std::vector<Document>& docs);

// What a chat_template key may say: llama3, chatml, jinja, tokenizer_default and
// tokenizer_default_fallback_llama3 / _chatml (io/data_config.h).
const std::vector<std::string>& chat_template_choices();

// Which end-of-turn tokens train (Axolotl's train_on_eot): its own setting, else train_on_eos's.
std::string end_of_turn_option(const DatasetSpec& spec);

// The turn ends of `spec` under `tokenizer`. Throws UserError on an eot_tokens name the template
// writes that is not one special token, or on EOS among given eot_tokens while train_on_eot and
// train_on_eos disagree (Axolotl's refusals; its default, EOS alone, is not checked).
TurnEnds turn_ends(const DatasetSpec& spec, const Tokenizer& tokenizer);

// Axolotl's warnings on a chat_template entry's end-of-turn tokens (its strategy's check): the
// EOS, when no eot_tokens are given, or each of eot_tokens that the entry's template never writes;
// such a token ends no turn, so no turn's end trains by it. One line each, for the start-up log.
std::vector<std::string> end_of_turn_warnings(const DatasetSpec& spec, const Tokenizer& tokenizer);

// The Jinja source of the built-in template `chat_template` (llama3, chatml or a fallback to one),
// as Axolotl ships it: what a saved tokenizer carries.
std::string builtin_chat_template_jinja(const std::string& chat_template);

// The built-in template a spec's chat_template stands for: llama3 or chatml, the fallback of a
// tokenizer_default_fallback_* name.
std::string builtin_chat_template(const std::string& chat_template);

}  // namespace llm
