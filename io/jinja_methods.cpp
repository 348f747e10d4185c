// defines: Python's str and dict methods for chat templates, and the helpers filters share
#include "io/jinja_methods.h"

#include <algorithm>

#include "io/jinja_builtins.h"  // iterate
#include "io/python_case.h"
#include "io/python_text.h"

namespace llm::jinja {

using Kind = Value::Kind;

namespace {

Value replace_text(const Text& t, const Value& old_value, const Value& new_value, const Value& count) {
  const std::string s = t.str(), from = string_of(old_value, "replace").str();
  const Text to = new_value.to_text();
  int64_t left = count.kind == Kind::none || count.kind == Kind::undefined ? -1 : integer_of(count, "replace");
  Text out;
  size_t begin = 0, found;
  while (left != 0 && !from.empty() && (found = s.find(from, begin)) != std::string::npos) {
    out.append(t.bytes(begin, found));
    out.append(to);
    begin = found + from.size();
    left--;
  }
  out.append(t.bytes(begin, s.size()));
  return Value::from(out);
}

bool affixed(const std::string& s, const Value& affix, bool prefix) {
  ValueList options = affix.kind == Kind::list ? *affix.list : ValueList{affix};
  for (const Value& o : options) {
    const std::string a = string_of(o, prefix ? "startswith" : "endswith").str();
    if (a.size() <= s.size() && s.compare(prefix ? 0 : s.size() - a.size(), a.size(), a) == 0) return true;
  }
  return false;
}

}  // namespace

[[noreturn]] void fail(const std::string& what) { throw TemplateError(what); }

Value argument(const std::vector<Value>& args, const Kwargs& kwargs, size_t index,
               const std::string& name, Value fallback) {
  for (const auto& [key, value] : kwargs)
    if (key == name) return value;
  return index < args.size() ? args[index] : fallback;
}

const Text& string_of(const Value& v, const std::string& what) {
  if (v.kind != Kind::string) fail(what + " expects a string, got " + v.type_name());
  return v.text;
}

int64_t integer_of(const Value& v, const std::string& what) {
  if (v.kind == Kind::integer) return v.integer;
  if (v.kind == Kind::boolean) return v.boolean;
  fail(what + " expects an integer, got " + v.type_name());
}

// Byte offsets of each code point of s, and s.size() last.
std::vector<size_t> code_points(const std::string& s) {
  std::vector<size_t> at;
  for (size_t i = 0; i < s.size(); i++)
    if (starts_code_point(s, i)) at.push_back(i);
  at.push_back(s.size());
  return at;
}

// Python's str.strip(chars): chars none strips whitespace.
Text strip_text(const Text& t, const Value& chars, bool left, bool right) {
  if (chars.kind == Kind::none || chars.kind == Kind::undefined) return t.strip(left, right);
  const std::string s = t.str(), set = string_of(chars, "strip").str();
  const std::vector<size_t> at = code_points(s);
  auto in_set = [&](size_t k) { return set.find(s.substr(at[k], at[k + 1] - at[k])) != std::string::npos; };
  size_t first = 0, last = at.size() - 1;
  while (left && first < last && in_set(first)) first++;
  while (right && last > first && in_set(last - 1)) last--;
  return t.bytes(at[first], at[last]);
}

// Python's str.split(sep, maxsplit), each part keeping its sources.
ValueList split_text(const Text& t, const Value& sep, int64_t maxsplit) {
  const std::string s = t.str();
  ValueList parts;
  if (sep.kind == Kind::none || sep.kind == Kind::undefined) {
    size_t i = 0, length = 0;
    while (true) {
      while (i < s.size() && is_python_space(decode_utf8(s, i, length))) i += length;
      if (i >= s.size()) break;
      if (maxsplit >= 0 && int64_t(parts.size()) == maxsplit) {
        size_t end = s.size(), begin = i;
        python_strip_bounds(s, begin, end, false, true);
        parts.push_back(Value::from(t.bytes(i, end)));
        break;
      }
      size_t j = i;
      while (j < s.size() && !is_python_space(decode_utf8(s, j, length))) j += length;
      parts.push_back(Value::from(t.bytes(i, j)));
      i = j;
    }
    return parts;
  }
  const std::string separator = string_of(sep, "split").str();
  if (separator.empty()) fail("split: empty separator");
  size_t begin = 0, found;
  while ((maxsplit < 0 || int64_t(parts.size()) < maxsplit) &&
         (found = s.find(separator, begin)) != std::string::npos) {
    parts.push_back(Value::from(t.bytes(begin, found)));
    begin = found + separator.size();
  }
  parts.push_back(Value::from(t.bytes(begin, s.size())));
  return parts;
}

Value join_values(const ValueList& items, const Text& separator) {
  Text out;
  for (size_t i = 0; i < items.size(); i++) {
    if (i) out.append(separator);
    out.append(items[i].to_text());
  }
  return Value::from(out);
}

Value string_method(const Value& self, const std::string& name, std::vector<Value>& args, Kwargs& kwargs) {
  const Text& t = self.text;
  const std::string s = t.str();
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return Value::from(strip_text(t, argument(args, kwargs, 0, "chars"), name != "rstrip", name != "lstrip"));
  if (name == "split")
    return Value::from(split_text(t, argument(args, kwargs, 0, "sep"),
                                  integer_of(argument(args, kwargs, 1, "maxsplit", Value::from(int64_t(-1))), "split")));
  if (name == "startswith" || name == "endswith")
    return Value::from(affixed(s, argument(args, kwargs, 0, "prefix"), name == "startswith"));
  if (name == "upper") return Value::from(Text(python_upper(s), t.common_source()));
  if (name == "lower") return Value::from(Text(python_lower(s), t.common_source()));
  if (name == "title") return Value::from(Text(python_title(s), t.common_source()));
  if (name == "capitalize") return Value::from(Text(python_capitalize(s), t.common_source()));
  if (name == "replace")
    return replace_text(t, argument(args, kwargs, 0, "old"), argument(args, kwargs, 1, "new"),
                        argument(args, kwargs, 2, "count"));
  if (name == "find" || name == "count") {
    const std::string needle = string_of(argument(args, kwargs, 0, "sub"), name).str();
    if (name == "find") {
      const size_t at = s.find(needle);
      return Value::from(int64_t(at == std::string::npos ? -1 : code_points(s.substr(0, at)).size() - 1));
    }
    int64_t n = 0;
    for (size_t at = 0; (at = s.find(needle, at)) != std::string::npos; at += std::max<size_t>(needle.size(), 1)) n++;
    return Value::from(n);
  }
  if (name == "join") return join_values(iterate(argument(args, kwargs, 0, "iterable")), t);
  if (name == "splitlines") {
    ValueList lines;
    size_t begin = 0;
    for (size_t i = 0; i < s.size(); i++)
      if (s[i] == '\n' || s[i] == '\r') {
        lines.push_back(Value::from(t.bytes(begin, i)));
        if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') i++;
        begin = i + 1;
      }
    if (begin < s.size()) lines.push_back(Value::from(t.bytes(begin, s.size())));
    return Value::from(lines);
  }
  if (name == "isspace") {
    size_t begin = 0, end = s.size();
    python_strip_bounds(s, begin, end, true, false);
    return Value::from(!s.empty() && begin == s.size());
  }
  fail("str has no method '" + name + "'");
}

bool is_string_method(const std::string& name) {
  for (const char* m : {"strip", "lstrip", "rstrip", "split", "startswith", "endswith", "upper", "lower",
                        "title", "capitalize", "replace", "find", "count", "join", "splitlines", "isspace"})
    if (name == m) return true;
  return false;
}

Value dict_method(const Value& self, const std::string& name, std::vector<Value>& args, Kwargs& kwargs) {
  if (name == "get") {
    const Value key = argument(args, kwargs, 0, "key");
    const Value found = self.member(string_of(key, "get").str());
    return found.is_defined() ? found : argument(args, kwargs, 1, "default");
  }
  ValueList out;
  for (const auto& [k, v] : *self.dict) {
    Value pair = Value::from(ValueList{Value::from(k), v});
    pair.is_tuple = true;
    out.push_back(name == "keys" ? Value::from(k) : name == "values" ? v : pair);
  }
  return Value::from(out);
}


}  // namespace llm::jinja
