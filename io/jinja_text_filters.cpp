// defines: apply_text_filter
#include "io/jinja_text_filters.h"

#include <unicode/uchar.h>

#include <cmath>
#include <cstdio>

#include "io/jinja_methods.h"
#include "io/python_unicode.h"
#include "io/python_text.h"

namespace llm::jinja {
namespace {

using Kind = Value::Kind;

// jinja2's do_title: the text split at runs of `-`, whitespace, `(`, `{`, `[` and `<`; each
// piece's first character upper-cased and the rest lower-cased ("it's" is "It's", where
// str.title writes "It'S").
std::string title_filter(const std::string& s) {
  const auto separates = [](char32_t c) {
    return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || is_python_space(c);
  };
  std::string out;
  size_t length = 0;
  for (size_t begin = 0; begin < s.size();) {
    const bool separator = separates(decode_utf8(s, begin, length));
    size_t end = begin;
    while (end < s.size() && separates(decode_utf8(s, end, length)) == separator) end += length;
    if (separator) {
      out.append(s, begin, end - begin);
    } else {
      decode_utf8(s, begin, length);
      out += python_upper(s.substr(begin, length)) + python_lower(s.substr(begin + length, end - begin - length));
    }
    begin = end;
  }
  return out;
}

// do_truncate: a text longer than length + leeway cut to length with `end`, at a word's end
// unless killwords.
Value truncate(const Value& v, std::vector<Value>& args, Kwargs& kwargs) {
  if (!v.is_defined()) return v;  // len(Undefined) is 0: returned as it is
  if (v.kind != Kind::string) fail("truncate expects a string, got " + v.type_name());
  const int64_t length = integer_of(argument(args, kwargs, 0, "length", Value::from(int64_t(255))), "truncate");
  const bool killwords = argument(args, kwargs, 1, "killwords", Value::from(false)).truthy();
  const Text end = argument(args, kwargs, 2, "end", Value::from("...")).to_text();
  const int64_t leeway = integer_of(argument(args, kwargs, 3, "leeway", Value::from(int64_t(5))), "truncate");
  const int64_t end_length = int64_t(code_points(end.str()).size()) - 1;
  if (length < end_length) fail("expected length >= " + std::to_string(end_length) + ", got " + std::to_string(length));
  if (leeway < 0) fail("expected leeway >= 0, got " + std::to_string(leeway));
  const std::vector<size_t> at = code_points(v.text.str());
  if (int64_t(at.size()) - 1 <= length + leeway) return v;
  Text kept = v.text.bytes(0, at[size_t(length - end_length)]);
  if (!killwords) {
    const size_t space = kept.str().rfind(' ');
    if (space != std::string::npos) kept = kept.bytes(0, space);
  }
  kept.append(end);
  return Value::from(kept);
}

// do_wordcount: the matches of Python's \w+ (letters, characters with a numeric value, `_`).
int64_t word_count(const std::string& s) {
  int64_t words = 0;
  bool in_word = false;
  size_t length = 0;
  for (size_t i = 0; i < s.size(); i += length) {
    const auto c = UChar32(decode_utf8(s, i, length));
    const bool word = c == '_' || u_isalpha(c) || u_getIntPropertyValue(c, UCHAR_NUMERIC_TYPE) != U_NT_NONE;
    words += word && !in_word;
    in_word = word;
  }
  return words;
}

// do_filesizeformat: a byte count in decimal (kB, MB, ...) or binary (KiB, MiB, ...) prefixes.
std::string file_size(const Value& v, bool binary) {
  double bytes = 0;
  if (v.is_numeric()) {
    bytes = v.as_double();
  } else {
    const std::string s = string_of(v, "filesizeformat").str();
    char* end = nullptr;
    bytes = std::strtod(s.c_str(), &end);
    if (s.empty() || *end) fail("could not convert string to float: '" + s + "'");
  }
  const double base = binary ? 1024 : 1000;
  if (bytes == 1) return "1 Byte";
  if (bytes < base && bytes <= -9.2e18) fail("filesizeformat of " + std::to_string(bytes) + ": below int64");
  if (bytes < base) return std::to_string(int64_t(bytes)) + " Bytes";
  const char* prefixes[] = {"k", "M", "G", "T", "P", "E", "Z", "Y"};
  double unit = base;
  int i = 0;
  for (; i < 8; i++) {
    unit *= base;
    if (bytes < unit) break;
  }
  i = std::min(i, 7);
  char printed[64];
  std::snprintf(printed, sizeof printed, "%.1f %s%s", base * bytes / unit,
                binary && i == 0 ? "K" : prefixes[i], binary ? "iB" : "B");
  return printed;
}

}  // namespace

std::optional<Value> apply_text_filter(const std::string& name, const Value& v, std::vector<Value>& args,
                                       Kwargs& kwargs) {
  if (name == "title") {
    const Text text = v.to_text();
    return Value::from(Text(title_filter(text.str()), text.common_source()));
  }
  if (name == "center") {  // do_center: str(value).center(width)
    std::vector<Value> width{argument(args, kwargs, 0, "width", Value::from(int64_t(80)))};
    Kwargs none;
    return string_method(Value::from(v.to_text()), "center", width, none);
  }
  if (name == "truncate") return truncate(v, args, kwargs);
  if (name == "wordcount") return Value::from(word_count(v.to_text().str()));
  if (name == "filesizeformat")
    return Value::from(file_size(v, argument(args, kwargs, 0, "binary", Value::from(false)).truthy()));
  return std::nullopt;
}

}  // namespace llm::jinja
