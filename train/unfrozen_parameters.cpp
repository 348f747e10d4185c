// defines: unfreeze_regex, pattern_matches, parse_unfreeze_pattern, freeze_all_but, zero_frozen_rows
#include "train/unfrozen_parameters.h"

#include <algorithm>

#include "engine/backend.h"
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

UnfreezePattern parse_unfreeze_pattern(const std::string& pattern) {
  static const std::regex range(R"(^(.+)\[([0-9]*)(:([0-9]*))?\]$)");
  std::smatch m;
  if (!std::regex_match(pattern, m, range)) return {pattern, std::nullopt};
  const std::string start = m[2], end = m[4];
  auto number = [&](const std::string& digits) {
    if (digits.size() > 12) throw UserError("a row range of at most 12 digits");
    return std::stoll(digits);
  };
  UnfreezePattern out{m[1], std::pair<int64_t, std::optional<int64_t>>{start.empty() ? 0 : number(start), std::nullopt}};
  if (!m[3].matched && !start.empty()) {  // [i]: that row alone ("[]": every row, as Axolotl reads it)
    out.rows->second = out.rows->first + 1;
  } else if (!end.empty()) {
    out.rows->second = number(end);
  }
  if (out.rows->second && *out.rows->second <= out.rows->first)
    throw UserError("a row range whose end is past its start");
  return out;
}

int64_t freeze_all_but(LlamaModel& model, const std::vector<std::string>& patterns, std::vector<FrozenRows>& frozen_rows) {
  std::vector<std::pair<std::regex, UnfreezePattern>> compiled;
  for (const std::string& p : patterns) {
    UnfreezePattern parsed = parse_unfreeze_pattern(p);
    compiled.emplace_back(unfreeze_regex(parsed.regex), std::move(parsed));
  }
  int64_t training = 0;
  for (const ParamRef& p : model.parameters()) {
    bool keep = false;
    std::vector<std::pair<int64_t, int64_t>> ranges;  // the rows that train, when ranged patterns match
    const int64_t rows = p.tensor->size(0);
    for (size_t i = 0; i < compiled.size(); i++) {
      if (!pattern_matches(compiled[i].first, p.name)) continue;
      keep = true;
      if (!compiled[i].second.rows) continue;
      const auto [begin, end] = *compiled[i].second.rows;
      if (end.value_or(rows) > rows)
        throw UserError("unfrozen_parameters: expected a row range within " + p.name + "'s " + std::to_string(rows) +
                        " rows, got '" + patterns[i] + "'");
      ranges.emplace_back(begin, end.value_or(rows));
    }
    p.tensor->set_requires_grad(keep);
    training += keep;
    if (ranges.empty()) continue;
    // Axolotl's: the union of the ranges trains; the rest, in order, is frozen.
    std::sort(ranges.begin(), ranges.end());
    FrozenRows frozen{p.tensor, {}};
    int64_t at = 0;
    for (const auto& [begin, end] : ranges) {
      if (begin > at) frozen.rows.emplace_back(at, begin);
      at = std::max(at, end);
    }
    if (at < rows) frozen.rows.emplace_back(at, rows);
    if (!frozen.rows.empty()) frozen_rows.push_back(std::move(frozen));
  }
  if (training == 0)
    throw UserError("unfrozen_parameters: expected a pattern matching at least one weight's name (" +
                    model.parameters().front().name + ", ...), got none matching");
  return training;
}

void zero_frozen_rows(const std::vector<FrozenRows>& frozen) {
  for (const FrozenRows& f : frozen) {
    Tensor grad = f.param->grad();
    if (!grad.defined()) continue;
    for (const auto& [begin, end] : f.rows) {
      Tensor rows = grad.narrow(0, begin, end - begin);
      backend(rows.device()).fill(rows, 0.0f);
    }
  }
}

}  // namespace llm
