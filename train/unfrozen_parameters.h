// Axolotl's unfrozen_parameters: a full fine-tuning run trains only the tensors whose HF name a
// pattern matches; the rest stay as base_model has them.
#pragma once
#include <regex>
#include <string>
#include <vector>

#include "model/llama.h"

namespace llm {

// A pattern as Axolotl compiles it: every "." not followed by "+" is a literal dot (".+" stays a
// wildcard), and a name matches when the regex matches at its start (Python's re.match).
std::regex unfreeze_regex(const std::string& pattern);  // std::regex_error when it is no regex
constexpr size_t kMaxPatternLength = 512;  // the config's bound (std::regex compiles recursively)
bool pattern_matches(const std::regex& pattern, const std::string& name);
// Axolotl's optional row range after a pattern ("^model.embed_tokens.weight$[32000:]"), which
// trains only those rows of a matching tensor: recognised so that the config can refuse it.
bool has_row_range(const std::string& pattern);

// Stops every weight of `model` whose name no pattern matches from requiring a gradient. Returns
// how many tensors still train; 0 is a UserError naming the key, as an optimizer needs a tensor.
int64_t freeze_all_but(LlamaModel& model, const std::vector<std::string>& patterns);

}  // namespace llm
