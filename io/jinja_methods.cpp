// defines: Python's str and dict methods for chat templates, and the helpers filters share
#include "io/jinja_methods.h"

#include <algorithm>

#include "io/jinja_builtins.h"  // iterate
#include "io/python_unicode.h"
#include "io/python_text.h"

namespace llm::jinja {

using Kind = Value::Kind;

namespace {

Value replace_text(const Text& t, const Value& old_value, const Value& new_value, const Value& count) {
  const std::string s = t.str(), from = string_of(old_value, "replace").str();
  const Text to = new_value.to_text();
  int64_t left = count.kind == Kind::none || count.kind == Kind::undefined ? -1 : integer_of(count, "replace");
  Text out;
  if (from.empty()) {  // Python puts `to` before each character and after the last
    const std::vector<size_t> at = code_points(s);
    for (size_t k = 0; k + 1 < at.size(); k++) {
      if (left != 0) out.append(to), left--;
      out.append(t.bytes(at[k], at[k + 1]));
    }
    if (left != 0) out.append(to);
    return Value::from(out);
  }
  size_t begin = 0, found;
  while (left != 0 && (found = s.find(from, begin)) != std::string::npos) {
    out.append(t.bytes(begin, found));
    out.append(to);
    begin = found + from.size();
    left--;
  }
  out.append(t.bytes(begin, s.size()));
  return Value::from(out);
}

bool affixed(const std::string& s, const Value& affix, bool prefix) {
  if (affix.kind == Kind::list && !affix.is_tuple)
    fail(std::string(prefix ? "startswith" : "endswith") + " first arg must be str or a tuple of str, not list");
  ValueList options = affix.kind == Kind::list ? *affix.list : ValueList{affix};
  for (const Value& o : options) {
    const std::string a = string_of(o, prefix ? "startswith" : "endswith").str();
    if (a.size() <= s.size() && s.compare(prefix ? 0 : s.size() - a.size(), a.size(), a) == 0) return true;
  }
  return false;
}

// Python's adjust_indices for str.find, count, startswith and their kin: the byte range of
// s[start:end] in code points, or npos as begin where Python finds nothing (start past the end,
// or end before start).
std::pair<size_t, size_t> slice_bounds(const std::string& s, const Value& start_value, const Value& end_value) {
  const std::vector<size_t> at = code_points(s);
  const int64_t n = int64_t(at.size()) - 1;
  const auto index = [&](const Value& v, int64_t fallback) {
    if (v.kind == Kind::none || v.kind == Kind::undefined) return fallback;
    const int64_t i = integer_of(v, "slice index");
    return i < 0 ? std::max<int64_t>(i + n, 0) : i;
  };
  const int64_t start = index(start_value, 0), end = std::min(index(end_value, n), n);
  if (start > n || end < start) return {std::string::npos, std::string::npos};
  return {at[size_t(start)], at[size_t(end)]};
}

// str.find, rfind, index, rindex (code point indices) and count (non-overlapping) over
// s[start:end].
Value search_text(const std::string& s, const std::string& name, std::vector<Value>& args, Kwargs& kwargs) {
  const std::string needle = string_of(argument(args, kwargs, 0, "sub"), name).str();
  const auto [begin, end] = slice_bounds(s, argument(args, kwargs, 1, "start"), argument(args, kwargs, 2, "end"));
  if (name == "count") {
    if (begin == std::string::npos) return Value::from(int64_t(0));
    if (needle.empty()) return Value::from(int64_t(code_points(s.substr(begin, end - begin)).size()));
    int64_t n = 0;
    for (size_t at = begin; (at = s.find(needle, at)) != std::string::npos && at + needle.size() <= end; at += needle.size()) n++;
    return Value::from(n);
  }
  size_t found = std::string::npos;
  if (begin != std::string::npos && end - begin >= needle.size()) {
    found = name == "find" || name == "index" ? s.find(needle, begin) : s.rfind(needle, end - needle.size());
    if (found != std::string::npos && (found < begin || found + needle.size() > end)) found = std::string::npos;
  }
  if (found != std::string::npos) return Value::from(int64_t(code_points(s.substr(0, found)).size()) - 1);
  if (name == "index" || name == "rindex") fail("substring not found");
  return Value::from(int64_t(-1));
}

// Python's str.rsplit(sep, maxsplit): split_text's parts taken from the right.
ValueList rsplit_text(const Text& t, const Value& sep, int64_t maxsplit) {
  const std::string s = t.str();
  ValueList parts;
  if (sep.kind == Kind::none || sep.kind == Kind::undefined) {
    size_t end = s.size();
    while (true) {
      size_t begin = 0;
      python_strip_bounds(s, begin, end, false, true);
      if (end == 0) break;
      if (maxsplit >= 0 && int64_t(parts.size()) == maxsplit) {
        parts.push_back(Value::from(t.bytes(0, end)));
        break;
      }
      size_t word = end, length = 0;
      while (word > 0) {
        size_t previous = word - 1;
        while (previous > 0 && !starts_code_point(s, previous)) previous--;
        if (is_python_space(decode_utf8(s, previous, length))) break;
        word = previous;
      }
      parts.push_back(Value::from(t.bytes(word, end)));
      end = word;
    }
  } else {
    const std::string separator = string_of(sep, "rsplit").str();
    if (separator.empty()) fail("empty separator");
    size_t end = s.size(), found;
    while ((maxsplit < 0 || int64_t(parts.size()) < maxsplit) && end >= separator.size() &&
           (found = s.rfind(separator, end - separator.size())) != std::string::npos) {
      parts.push_back(Value::from(t.bytes(found + separator.size(), end)));
      end = found;
    }
    parts.push_back(Value::from(t.bytes(0, end)));
  }
  std::reverse(parts.begin(), parts.end());
  return parts;
}

// str.partition / rpartition: (before, sep, after); without sep (s, '', '') / ('', '', s).
Value partition(const Text& t, const Value& sep, bool from_right) {
  const std::string s = t.str(), separator = string_of(sep, from_right ? "rpartition" : "partition").str();
  if (separator.empty()) fail("empty separator");
  const size_t found = from_right ? s.rfind(separator) : s.find(separator);
  Value parts;
  if (found == std::string::npos) {
    parts = Value::from(from_right ? ValueList{Value::from(""), Value::from(""), Value::from(t)}
                                   : ValueList{Value::from(t), Value::from(""), Value::from("")});
  } else {
    parts = Value::from(ValueList{Value::from(t.bytes(0, found)), Value::from(t.bytes(found, found + separator.size())),
                                  Value::from(t.bytes(found + separator.size(), s.size()))});
  }
  parts.is_tuple = true;
  return parts;
}

// str.ljust, rjust, center (CPython's pad: center's odd space on the left when width is odd)
// and zfill (zeros after a leading sign).
Value padded(const Text& t, const std::string& name, std::vector<Value>& args, Kwargs& kwargs) {
  const std::string s = t.str();
  const int64_t width = integer_of(argument(args, kwargs, 0, "width"), name);
  std::string fill = name == "zfill" ? "0" : " ";
  if (name != "zfill") {
    fill = string_of(argument(args, kwargs, 1, "fillchar", Value::from(" ")), name).str();
    if (code_points(fill).size() != 2) fail("The fill character must be exactly one character long");
  }
  const int64_t length = int64_t(code_points(s).size()) - 1;
  if (width <= length) return Value::from(t);
  if (width > 1000000) fail(name + " wider than 1000000");
  const int64_t margin = width - length;
  const int64_t left = name == "ljust" ? 0 : name == "center" ? margin / 2 + (margin & width & 1) : margin;
  const auto repeat = [&fill](int64_t times) {
    std::string out;
    for (int64_t i = 0; i < times; i++) out += fill;
    return out;
  };
  const bool signed_zfill = name == "zfill" && !s.empty() && (s[0] == '+' || s[0] == '-');
  Text out(signed_zfill ? s.substr(0, 1) : std::string());
  out.append(repeat(left), kTemplateSource);
  out.append(t.bytes(signed_zfill ? 1 : 0, s.size()));
  out.append(repeat(margin - left), kTemplateSource);
  return Value::from(out);
}

// str.splitlines(keepends): lines end at \n, \r, \r\n, \v, \f, \x1c-\x1e, U+0085, U+2028, U+2029.
Value split_lines(const Text& t, bool keepends) {
  const std::string s = t.str();
  ValueList lines;
  size_t begin = 0, length = 0;
  for (size_t i = 0; i < s.size();) {
    const char32_t c = decode_utf8(s, i, length);
    const bool ends_line = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) ||
                           c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!ends_line) {
      i += length;
      continue;
    }
    size_t next = i + length;
    if (c == '\r' && next < s.size() && s[next] == '\n') next++;
    lines.push_back(Value::from(t.bytes(begin, keepends ? next : i)));
    begin = i = next;
  }
  if (begin < s.size()) lines.push_back(Value::from(t.bytes(begin, s.size())));
  return Value::from(lines);
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
      if (maxsplit >= 0 && int64_t(parts.size()) == maxsplit) {  // the rest, its trailing spaces kept
        parts.push_back(Value::from(t.bytes(i, s.size())));
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
  if (name == "startswith" || name == "endswith") {
    const auto [begin, end] = slice_bounds(s, argument(args, kwargs, 1, "start"), argument(args, kwargs, 2, "end"));
    return Value::from(begin != std::string::npos &&
                       affixed(s.substr(begin, end - begin), argument(args, kwargs, 0, "prefix"), name == "startswith"));
  }
  if (name == "rsplit")
    return Value::from(rsplit_text(t, argument(args, kwargs, 0, "sep"),
                                   integer_of(argument(args, kwargs, 1, "maxsplit", Value::from(int64_t(-1))), "rsplit")));
  if (name == "partition" || name == "rpartition") return partition(t, argument(args, kwargs, 0, "sep"), name == "rpartition");
  if (name == "removeprefix" || name == "removesuffix") {
    const std::string affix = string_of(argument(args, kwargs, 0, name == "removeprefix" ? "prefix" : "suffix"), name).str();
    if (!affixed(s, Value::from(affix), name == "removeprefix")) return self;
    return Value::from(name == "removeprefix" ? t.bytes(affix.size(), s.size()) : t.bytes(0, s.size() - affix.size()));
  }
  if (name == "ljust" || name == "rjust" || name == "center" || name == "zfill") return padded(t, name, args, kwargs);
  if (name == "upper") return Value::from(Text(python_upper(s), t.common_source()));
  if (name == "lower") return Value::from(Text(python_lower(s), t.common_source()));
  if (name == "title") return Value::from(Text(python_title(s), t.common_source()));
  if (name == "capitalize") return Value::from(Text(python_capitalize(s), t.common_source()));
  if (name == "swapcase") return Value::from(Text(python_swapcase(s), t.common_source()));
  if (name == "casefold") return Value::from(Text(python_casefold(s), t.common_source()));
  if (name == "islower") return Value::from(python_islower(s));
  if (name == "isupper") return Value::from(python_isupper(s));
  if (name == "istitle") return Value::from(python_istitle(s));
  if (name == "isalpha" || name == "isdecimal" || name == "isdigit" || name == "isnumeric" || name == "isalnum")
    return Value::from(python_is_class(s, name));
  if (name == "replace") {  // str.replace takes strings only (the replace filter converts first)
    const Value new_value = argument(args, kwargs, 1, "new");
    if (new_value.kind != Kind::string) fail("replace() argument 2 must be str, not " + new_value.type_name());
    return replace_text(t, argument(args, kwargs, 0, "old"), new_value, argument(args, kwargs, 2, "count"));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count")
    return search_text(s, name, args, kwargs);
  if (name == "join") {  // str.join takes strings only (the join filter converts, this does not)
    const ValueList items = iterate(argument(args, kwargs, 0, "iterable"));
    for (size_t i = 0; i < items.size(); i++)
      if (items[i].kind != Kind::string)
        fail("sequence item " + std::to_string(i) + ": expected str instance, " + items[i].type_name() + " found");
    return join_values(items, t);
  }
  if (name == "splitlines") return split_lines(t, argument(args, kwargs, 0, "keepends", Value::from(false)).truthy());
  if (name == "isascii") return Value::from(std::all_of(s.begin(), s.end(), [](char c) { return (c & 0x80) == 0; }));
  if (name == "isprintable") {
    size_t length = 0;
    for (size_t i = 0; i < s.size(); i += length)
      if (!python_is_printable(decode_utf8(s, i, length))) return Value::from(false);
    return Value::from(true);
  }
  if (name == "isspace") {
    size_t begin = 0, end = s.size();
    python_strip_bounds(s, begin, end, true, false);
    return Value::from(!s.empty() && begin == s.size());
  }
  fail("str has no method '" + name + "'");
}

bool is_string_method(const std::string& name) {
  for (const char* m : {"strip", "lstrip", "rstrip", "split", "rsplit", "partition", "rpartition", "startswith",
                        "endswith", "removeprefix", "removesuffix", "upper", "lower", "title", "capitalize",
                        "swapcase", "casefold", "replace", "find", "rfind", "index", "rindex", "count", "join",
                        "splitlines", "ljust", "rjust", "center", "zfill", "isspace", "islower", "isupper",
                        "istitle", "isalpha", "isdecimal", "isdigit", "isnumeric", "isalnum", "isascii",
                        "isprintable"})
    if (name == m) return true;
  return false;
}

Value list_method(const Value& self, const std::string& name, std::vector<Value>& args, Kwargs& kwargs) {
  const ValueList& items = *self.list;
  if (!kwargs.empty()) fail(self.type_name() + "." + name + "() takes no keyword arguments");
  if (args.empty()) fail(self.type_name() + "." + name + "() takes exactly one argument (0 given)");
  if (name == "count") {
    if (args.size() > 1) fail(self.type_name() + ".count() takes exactly one argument (" + std::to_string(args.size()) + " given)");
    return Value::from(int64_t(std::count(items.begin(), items.end(), args[0])));
  }
  const int64_t n = int64_t(items.size());
  auto bound = [&](size_t i, int64_t fallback) {  // Python's slice rule for start and end
    if (i >= args.size()) return fallback;
    int64_t at = integer_of(args[i], "index");
    if (at < 0) at += n;
    return std::clamp<int64_t>(at, 0, n);
  };
  for (int64_t i = bound(1, 0), end = bound(2, n); i < end; i++)
    if (items[size_t(i)] == args[0]) return Value::from(i);
  fail(self.is_tuple ? "tuple.index(x): x not in tuple" : args[0].repr() + " is not in list");
}

Value copy_method(const Value& self, const std::string& name, std::vector<Value>& args, Kwargs& kwargs) {
  if (!args.empty() || !kwargs.empty())
    fail(self.type_name() + "." + name + "() takes no arguments (" + std::to_string(args.size() + kwargs.size()) + " given)");
  return self.kind == Value::Kind::list ? Value::from(ValueList(*self.list)) : Value::from(ValueDict(*self.dict));
}

Value dict_method(const Value& self, const std::string& name, std::vector<Value>& args, Kwargs& kwargs) {
  if (name == "get") {
    const Value key = argument(args, kwargs, 0, "key");
    const std::string name = string_of(key, "get").str();
    for (const auto& [k, v] : *self.dict)
      if (k == name) return v;  // even an Undefined stored there
    return argument(args, kwargs, 1, "default");
  }
  ValueList out;
  for (const auto& [k, v] : *self.dict) {
    Value pair = Value::from(ValueList{Value::from(k), v});
    pair.is_tuple = true;
    out.push_back(name == "keys" ? Value::from(k) : name == "values" ? v : pair);
  }
  return Value::make_view(out, "dict_" + name);
}


}  // namespace llm::jinja
