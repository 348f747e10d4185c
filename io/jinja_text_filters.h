// jinja2's filters that reshape text (jinja2/filters.py 3.1): title (its own, not str.title),
// center, truncate, wordcount and filesizeformat. Errors are TemplateError.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "io/jinja_value.h"

namespace llm::jinja {

// The filter `name` applied to `subject`; nullopt when `name` is none of these.
std::optional<Value> apply_text_filter(const std::string& name, const Value& subject,
                                       std::vector<Value>& args, Kwargs& kwargs);

}  // namespace llm::jinja
