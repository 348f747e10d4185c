// Python's str and dict methods as chat templates call them (`content.strip()`, `d.items()`),
// and the argument helpers the filters share with them. Strings keep their sources (Text) where
// Python's result is a part of the string (strip, split, slices); otherwise the result has the
// one source all of the input had. Errors are TemplateError.
#pragma once
#include <string>
#include <vector>

#include "io/jinja_value.h"

namespace llm::jinja {

[[noreturn]] void fail(const std::string& what);

// Argument `index` (or keyword `name`) of a call, else `fallback`.
Value argument(const std::vector<Value>& args, const Kwargs& kwargs, size_t index,
               const std::string& name, Value fallback = Value::none());
const Text& string_of(const Value& v, const std::string& what);  // or fail naming `what`
int64_t integer_of(const Value& v, const std::string& what);     // ints and bools
std::vector<size_t> code_points(const std::string& s);  // each one's byte offset, then s.size()

Text strip_text(const Text& t, const Value& chars, bool left, bool right);  // str.strip(chars)
ValueList split_text(const Text& t, const Value& sep, int64_t maxsplit);    // str.split
Value join_values(const ValueList& items, const Text& separator);          // separator.join

// self.name(args): Python's str methods a template may call (is_string_method lists them), with
// Python's index rules for start and end, and its Unicode classes and case maps.
bool is_string_method(const std::string& name);
Value string_method(const Value& self, const std::string& name, std::vector<Value>& args, Kwargs& kwargs);
// self.name(args) on a dict: items (tuples), keys, values, get.
Value dict_method(const Value& self, const std::string& name, std::vector<Value>& args, Kwargs& kwargs);
// self.name(args) on a list or tuple: index (within start and end) and count, as Python's.
Value list_method(const Value& self, const std::string& name, std::vector<Value>& args, Kwargs& kwargs);
// self.copy() on a list or dict: a shallow copy (the sandbox lets it through: it changes nothing).
Value copy_method(const Value& self, const std::string& name, std::vector<Value>& args, Kwargs& kwargs);

}  // namespace llm::jinja
