// defines: unfreeze_regex, pattern_matches, has_row_range, freeze_all_but
#include "train/unfrozen_parameters.h"

#include "engine/user_error.h"

namespace llm {

std::regex unfreeze_regex(const std::string& pattern) {
  std::string literal_dots;
  for (size_t i = 0; i < pattern.size(); i++) {
    const bool wildcard = i + 1 < pattern.size() && pattern[i + 1] == '+';
    literal_dots += pattern[i] == '.' && !wildcard ? std::string("\\.") : std::string(1, pattern[i]);
  }
  return std::regex(literal_dots, std::regex::ECMAScript);
}

bool pattern_matches(const std::regex& pattern, const std::string& name) {
  return std::regex_search(name, pattern, std::regex_constants::match_continuous);
}

bool has_row_range(const std::string& pattern) {
  static const std::regex range(R"(^(.+)\[([0-9]*)(:([0-9]*))?\]$)");
  return std::regex_match(pattern, range);
}

int64_t freeze_all_but(LlamaModel& model, const std::vector<std::string>& patterns) {
  std::vector<std::regex> compiled;
  for (const std::string& p : patterns) compiled.push_back(unfreeze_regex(p));
  int64_t training = 0;
  for (const ParamRef& p : model.parameters()) {
    bool keep = false;
    for (const std::regex& r : compiled) keep = keep || pattern_matches(r, p.name);
    p.tensor->set_requires_grad(keep);
    training += keep;
  }
  if (training == 0)
    throw UserError("unfrozen_parameters: expected a pattern matching at least one weight's name (" +
                    model.parameters().front().name + ", ...), got none matching");
  return training;
}

}  // namespace llm
