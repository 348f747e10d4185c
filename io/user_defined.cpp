// defines: format_text, format_named, format_problem, user_defined_prompt
#include "io/user_defined.h"

#include <algorithm>

#include "engine/user_error.h"

namespace llm {
namespace {

// Walks `format` as Python's str.format does for named fields; calls `field(name)` for each and
// `text(piece)` for the rest. Returns the first problem, or nullopt.
template <typename Field, typename Text>
std::optional<std::string> walk(const std::string& format, Field field, Text text) {
  for (size_t i = 0; i < format.size();) {
    const char c = format[i];
    if ((c == '{' || c == '}') && i + 1 < format.size() && format[i + 1] == c) {
      text(std::string(1, c));
      i += 2;
    } else if (c == '}') {
      return std::string("a single '}' (write '}}' for a brace)");
    } else if (c == '{') {
      const size_t close = format.find('}', i);
      if (close == std::string::npos) return std::string("a '{' without its '}' (write '{{' for a brace)");
      if (std::optional<std::string> problem = field(format.substr(i + 1, close - i - 1))) return problem;
      i = close + 1;
    } else {
      const size_t next = format.find_first_of("{}", i);
      const size_t end = next == std::string::npos ? format.size() : next;
      text(format.substr(i, end - i));
      i = end;
    }
  }
  return std::nullopt;
}

}  // namespace

jinja::Text format_text(const std::string& format, const std::vector<std::pair<std::string, std::string>>& values,
                        int value_source, const std::string& what) {
  jinja::Text out;
  const std::optional<std::string> problem = walk(
      format,
      [&](const std::string& name) -> std::optional<std::string> {
        for (const auto& [key, value] : values)
          if (key == name) {
            out.append(value, value_source);
            return std::nullopt;
          }
        return "the field {" + name + "}, which it does not have";
      },
      [&](const std::string& piece) { out.append(piece, jinja::kTemplateSource); });
  if (problem) throw UserError(what + ": the format holds " + *problem);
  return out;
}

std::string format_named(const std::string& format, const std::vector<std::pair<std::string, std::string>>& values,
                         const std::string& what) {
  return format_text(format, values, jinja::kTemplateSource, what).str();
}

std::optional<std::string> format_problem(const std::string& format, const std::vector<std::string>& names) {
  return walk(
      format,
      [&](const std::string& name) -> std::optional<std::string> {
        if (std::find(names.begin(), names.end(), name) != names.end()) return std::nullopt;
        return "the field {" + name + "}, which it does not have";
      },
      [](const std::string&) {});
}

std::string user_defined_prompt(const UserDefinedFormat& f, const std::string& system, const std::string& instruction,
                                const std::string& input) {
  std::string prompt;
  if (!system.empty() && !f.system_format.empty())
    prompt = format_named(f.system_format, {{"system", system}}, "system_format");
  if (!input.empty()) return prompt + format_named(f.format, {{"instruction", instruction}, {"input", input}}, "format");
  return prompt + format_named(f.no_input_format, {{"instruction", instruction}}, "no_input_format");
}

}  // namespace llm
