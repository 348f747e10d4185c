// What jinja2's compiler refuses before a template runs: a filter or test name jinja2 3.1 (with
// transformers' tojson) does not define, wherever it is written, even in code that never runs;
// except inside an if (its test and branches) or a conditional expression of the same frame,
// which jinja2 3.1 looks up only when it runs. A name jinja2 defines that is not read here
// (wordwrap, urlize, ...) fails where it runs.
#pragma once
#include <string>

#include "io/jinja_syntax.h"

namespace llm::jinja {

// Throws UserError "<where>: chat template line N: no filter named 'x'" (or test).
void check_filters_and_tests(const Body& body, const std::string& where);

}  // namespace llm::jinja
