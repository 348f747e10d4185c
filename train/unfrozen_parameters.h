// Axolotl's unfrozen_parameters: a full fine-tuning run trains only the tensors whose HF name a
// pattern matches; the rest stay as base_model has them. A pattern may end in a row range
// ("^model.embed_tokens.weight$[128256:]": [i], [a:b], [a:] or [:b], never part of the regex):
// a tensor that ranged patterns match trains only the union of their rows, the others' gradient
// zeroed as Axolotl's hook zeroes it (so clipping never sees them, while weight decay, applied to
// the whole tensor, still reaches them).
#pragma once
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "model/llama.h"

namespace llm {

// A pattern as Axolotl compiles it: every "." not followed by "+" is a literal dot (".+" stays a
// wildcard), and a name matches when the regex matches at its start (Python's re.match).
std::regex unfreeze_regex(const std::string& pattern);  // std::regex_error when it is no regex
constexpr size_t kMaxPatternLength = 512;  // the config's bound (std::regex compiles recursively)
bool pattern_matches(const std::regex& pattern, const std::string& name);

// A pattern split into its regex and its row range ([begin, end); end nullopt: to the last row).
struct UnfreezePattern {
  std::string regex;
  std::optional<std::pair<int64_t, std::optional<int64_t>>> rows;
};
// UserError (what was expected, for the config's message) when a range is empty (start >= end).
UnfreezePattern parse_unfreeze_pattern(const std::string& pattern);

// The rows of a trained tensor whose gradient is zeroed, [begin, end) each.
struct FrozenRows {
  Tensor* param;
  std::vector<std::pair<int64_t, int64_t>> rows;
};

// Stops every weight of `model` whose name no pattern matches from requiring a gradient; returns
// the frozen rows of the tensors ranged patterns match (appended to `frozen_rows`) and how many
// tensors still train. No tensor training, or a range past its tensor's rows, is a UserError
// naming the key.
int64_t freeze_all_but(LlamaModel& model, const std::vector<std::string>& patterns, std::vector<FrozenRows>& frozen_rows);

// Zeroes the gradient rows `frozen` lists (after a step's backward, before its update).
void zero_frozen_rows(const std::vector<FrozenRows>& frozen);

}  // namespace llm
