// jinja2's filters that order and group a sequence (jinja2/filters.py 3.1): sort, dictsort,
// unique, min, max (each case-insensitive on strings unless case_sensitive, as jinja2's),
// groupby, batch and slice. Errors are TemplateError.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "io/jinja_value.h"

namespace llm::jinja {

// The filter `name` applied to `subject`; nullopt when `name` is none of these.
std::optional<Value> apply_sequence_filter(const std::string& name, const Value& subject,
                                           std::vector<Value>& args, Kwargs& kwargs);

}  // namespace llm::jinja
