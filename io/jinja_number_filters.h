// jinja2's number filters (jinja2/filters.py 3.1): int and float, which read strings as Python's
// int(text, base) and float(text) do (whitespace, underscores, a sign, base prefixes, inf and
// nan) and fall back to a default; round, correctly rounded half to even as Python's round
// (methods common, ceil, floor); abs. Errors are TemplateError.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "io/jinja_value.h"

namespace llm::jinja {

// The filter `name` applied to `subject`; nullopt when `name` is none of these.
std::optional<Value> apply_number_filter(const std::string& name, const Value& subject,
                                         std::vector<Value>& args, Kwargs& kwargs);

}  // namespace llm::jinja
