// Conversations under a Jinja chat template (a dataset's chat_template tokenizer_default, jinja,
// or a tokenizer_default_fallback_* whose tokenizer has one), as Axolotl's ChatTemplateStrategy
// reads them with transformers:
//   rendered by io/jinja.h with messages, tools (the row's field_tools, else none), documents
//   (none), bos_token, eos_token and add_generation_prompt false, as apply_chat_template passes;
//   tokenized whole (tokens may span the template's text and a message's), where only the
//   special tokens the template itself writes are read as such: a "<|eot_id|>" typed in a
//   message stays text (transformers would read it as the token);
//   masked as Axolotl's ChatTemplateStrategy masks: each turn that trains (or whose end trains
//   under `all`) is found by find_turn (the conversation up to it rendered twice, once with
//   "[[dummy_message]]" as its content: the ids between the first and last difference, a
//   tool_calls turn's rendered calls included) and takes its loss there; then the first
//   end-of-turn token (one of eot_tokens, or EOS when none are given) at or after the turn's end,
//   kept when within 3 tokens of it, trains as train_on_eot says, and the first EOS so placed as
//   train_on_eos says; the rest never.
#pragma once
#include <set>
#include <string>
#include <vector>

#include "io/chat_template.h"  // TurnMask
#include "io/data_config.h"
#include "io/documents.h"
#include "io/jinja.h"
#include "io/tokenizer.h"

namespace llm {

// The variables apply_chat_template passes a template: messages, tools, documents (none),
// add_generation_prompt, and the tokenizer's bos_token and eos_token by name.
// `kwargs` (a JSON object's text, DatasetSpec::chat_template_kwargs) adds variables, as
// apply_chat_template's keyword arguments: over bos_token and eos_token, never over the others.
jinja::ValueDict chat_template_variables(const jinja::Value& messages, const jinja::Value& tools,
                                         bool add_generation_prompt, const Tokenizer& tokenizer,
                                         const std::string& kwargs = "");

// The ids of rendered text, tokenized whole as transformers tokenizes it, except that only the
// special tokens the template wrote (runs of jinja::kTemplateSource) are read as such; `ranges`,
// when given, gets each token's byte range in text.str().
std::vector<int32_t> tokenize_template_text(const jinja::Text& text, const Tokenizer& tokenizer,
                                            std::vector<std::pair<size_t, size_t>>* ranges = nullptr);

// One conversation's document: token-id pieces (no BOS/EOS added: the template writes its own).
// `messages` is the template's list of message dicts, each content's strings carrying the
// message's index as their source (so special tokens' names typed there stay text); `tools` the row's tool definitions (none: none);
// `masks` how each message is masked (io/chat_template.h's turn_masks); `ends` the file's turn
// ends (io/chat_template.h's turn_ends). UserError names spec.path when rendering fails.
Document jinja_chat_document(const jinja::Template& chat_template, const jinja::ValueList& messages,
                             const jinja::Value& tools, const std::vector<TurnMask>& masks,
                             const TurnEnds& ends, const DatasetSpec& spec, const Tokenizer& tokenizer);

}  // namespace llm
