// Python's printf-style string formatting, `text % args`, as a chat template reaches it: the `%`
// operator on a string and jinja2's `format` filter (`soft_str(value) % (kwargs or args)`).
#pragma once
#include "io/jinja_value.h"

namespace llm::jinja {

// `format` % `args`: a tuple gives the conversions their values in order, a dict their %(key)s
// values, anything else is the one value. The format's own text keeps its sources, and so does a
// string's %s with no width or precision. TemplateError, with Python's message, on a bad
// conversion, too few or too many values, or a value of the wrong type.
Text percent_format(const Text& format, const Value& args);

}  // namespace llm::jinja
