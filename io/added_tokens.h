// Axolotl's `tokens`: tokens added to a tokenizer as transformers' add_tokens adds them (an
// AddedToken, not normalized, not special): each one is a whole token wherever its text appears,
// in any text, a row's included (transformers splits added tokens out of the text before BPE).
// A token the vocabulary has already (a special token's name, or text that encodes to one id)
// keeps its id; the others take new ids from the vocabulary's size on, in the order given, and
// the model's embedding and lm_head grow to hold them (train/: Axolotl's resize).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/tokenizer.h"

namespace llm {

// `base` with `tokens` added; UserError naming `where` (the config) and `tokens` on an empty or
// repeated token.
std::unique_ptr<Tokenizer> with_added_tokens(std::unique_ptr<Tokenizer> base, const std::vector<std::string>& tokens,
                                             const std::string& where);

// The ids at or above `base_vocab` that `tokenizer` gives `tokens`, with their text: what a saved
// tokenizer.json lists as added tokens.
std::vector<std::pair<int32_t, std::string>> new_token_ids(const Tokenizer& tokenizer,
                                                           const std::vector<std::string>& tokens, int32_t base_vocab);

}  // namespace llm
