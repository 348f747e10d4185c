// defines: Text, Value's constructors and Python semantics (bool, str, repr, ==, <), to_json
#include "io/jinja_value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "io/python_text.h"
#include "io/python_unicode.h"

namespace llm::jinja {

void Text::append(std::string text, int source) {
  if (text.empty()) return;
  if (!runs_.empty() && runs_.back().source == source) runs_.back().text += text;
  else runs_.push_back({std::move(text), source});
}

void Text::append(const Text& other) {
  for (const Run& r : other.runs_) append(r.text, r.source);
}

std::string Text::str() const {
  std::string s;
  for (const Run& r : runs_) s += r.text;
  return s;
}

size_t Text::size() const {
  size_t n = 0;
  for (const Run& r : runs_) n += r.text.size();
  return n;
}

int Text::common_source() const {
  if (runs_.size() != 1) return kTemplateSource;
  return runs_[0].source;
}

Text Text::bytes(size_t begin, size_t end) const {
  Text out;
  size_t at = 0;
  for (const Run& r : runs_) {
    const size_t from = std::max(begin, at), to = std::min(end, at + r.text.size());
    if (from < to) out.append(r.text.substr(from - at, to - from), r.source);
    at += r.text.size();
  }
  return out;
}

Text Text::strip(bool left, bool right) const {
  const std::string s = str();
  size_t begin = 0, end = s.size();
  python_strip_bounds(s, begin, end, left, right);
  return bytes(begin, end);
}

namespace {

// A Value of `kind`, its member set by `set`.
template <class Set>
Value make(Value::Kind kind, Set set) {
  Value v;
  v.kind = kind;
  set(v);
  return v;
}

}  // namespace

Value Value::undefined(std::string what) {
  return make(Kind::undefined, [&](Value& v) { v.name = std::move(what); });
}
Value Value::none() { return make(Kind::none, [](Value&) {}); }
Value Value::from(bool b) { return make(Kind::boolean, [&](Value& v) { v.boolean = b; }); }
Value Value::from(int64_t i) { return make(Kind::integer, [&](Value& v) { v.integer = i; }); }
Value Value::from(double d) { return make(Kind::number, [&](Value& v) { v.number = d; }); }
Value Value::from(Text t) { return make(Kind::string, [&](Value& v) { v.text = std::move(t); }); }
Value Value::from(ValueList items) {
  return make(Kind::list, [&](Value& v) { v.list = std::make_shared<ValueList>(std::move(items)); });
}
Value Value::from(ValueDict items) {
  return make(Kind::dict, [&](Value& v) { v.dict = std::make_shared<ValueDict>(std::move(items)); });
}
Value Value::from(Function f) {
  return make(Kind::function, [&](Value& v) { v.function = std::make_shared<Function>(std::move(f)); });
}
Value Value::make_iterator(std::function<bool(Value& out)> next, std::string python_type, std::string function) {
  return make(Kind::iterator, [&](Value& v) {
    v.iterator = std::make_shared<Iterator>(Iterator{std::move(next)});
    v.python_type = std::move(python_type);
    v.name = std::move(function);
  });
}
Value Value::make_iterator(ValueList items, std::string python_type, std::string function) {
  auto next = [items = std::move(items), at = size_t(0)](Value& out) mutable {
    if (at == items.size()) return false;
    out = items[at++];
    return true;
  };
  return make_iterator(std::move(next), std::move(python_type), std::move(function));
}
Value Value::make_view(ValueList items, std::string python_type) {
  return make(Kind::view, [&](Value& v) {
    v.list = std::make_shared<ValueList>(std::move(items));
    v.python_type = std::move(python_type);
  });
}

double Value::as_double() const {
  return kind == Kind::number ? number : kind == Kind::integer ? double(integer) : double(boolean);
}

bool Value::truthy() const {
  switch (kind) {
    case Kind::undefined: case Kind::none: return false;
    case Kind::boolean: return boolean;
    case Kind::integer: return integer != 0;
    case Kind::number: return number != 0;
    case Kind::string: return !text.empty();
    case Kind::list: return !list->empty();
    case Kind::dict: return is_namespace || !dict->empty();
    case Kind::function: case Kind::iterator: return true;
    case Kind::view: return !list->empty();
  }
  return false;
}

Value Value::member(const std::string& key) const {
  if (kind == Kind::dict)
    for (const auto& [k, v] : *dict)
      if (k == key) return v;
  return undefined(key);
}

namespace {

// Python's repr of a float: the shortest digits that read back as `d`, in fixed notation for
// exponents -4..15 and scientific otherwise ("1e+20", "1e-05").
std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[40];
  for (int precision = 1; precision <= 17; precision++) {
    std::snprintf(buf, sizeof buf, "%.*e", precision - 1, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::string s = buf;  // [-]D[.DDD]e[+-]XX
  const bool negative = s[0] == '-';
  if (negative) s.erase(0, 1);
  const size_t e = s.find('e');
  const int exponent = std::atoi(s.c_str() + e + 1);
  std::string digits = s.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  std::string out;
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out = "0." + std::string(size_t(-exponent - 1), '0') + digits;
    } else if (size_t(exponent) + 1 >= digits.size()) {
      out = digits + std::string(exponent + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, exponent + 1) + "." + digits.substr(exponent + 1);
    }
  } else {
    out = digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "");
    char ex[16];
    std::snprintf(ex, sizeof ex, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += ex;
  }
  return (negative ? "-" : "") + out;
}

// Python's repr of a str: single quotes unless the text holds ' and no "; what is not printable
// escaped as \xhh, \uhhhh or \Uhhhhhhhh.
std::string string_repr(const std::string& s) {
  const char quote = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, quote);
  size_t length = 0;
  for (size_t i = 0; i < s.size(); i += length) {
    const char32_t c = decode_utf8(s, i, length);
    if (c == char32_t(quote) || c == '\\') out += std::string("\\") + char(c);
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x80 ? c < 0x20 || c == 0x7F : !python_is_printable(c)) {
      char buf[16];
      std::snprintf(buf, sizeof buf, c < 0x100 ? "\\x%02x" : c < 0x10000 ? "\\u%04x" : "\\U%08x", unsigned(c));
      out += buf;
    } else {
      out.append(s, i, length);
    }
  }
  return out + quote;
}

}  // namespace

Text Value::to_text() const {
  if (kind == Kind::string) return text;
  if (kind == Kind::undefined) return Text();
  return Text(repr());
}

std::string Value::repr() const {
  switch (kind) {
    case Kind::undefined: return "Undefined";  // jinja2's Undefined.__repr__
    case Kind::none: return "None";
    case Kind::boolean: return boolean ? "True" : "False";
    case Kind::integer: return std::to_string(integer);
    case Kind::number: return float_repr(number);
    case Kind::string: return string_repr(text.str());
    case Kind::list: {
      std::string s = is_tuple ? "(" : "[";
      for (size_t i = 0; i < list->size(); i++) s += (i ? ", " : "") + (*list)[i].repr();
      return s + (!is_tuple ? "]" : list->size() == 1 ? ",)" : ")");
    }
    case Kind::dict: {
      std::string s = is_namespace ? "<Namespace {" : "{";
      for (size_t i = 0; i < dict->size(); i++)
        s += (i ? ", " : "") + string_repr((*dict)[i].first) + ": " + (*dict)[i].second.repr();
      return s + (is_namespace ? "}>" : "}");
    }
    case Kind::function: return "<function>";
    case Kind::iterator:  // Python's repr names the object's address: one fixed here, so renders repeat
      return "<" + python_type + " object " + (name.empty() ? "" : name + " ") + "at 0x7f0000000000>";
    case Kind::view: {
      Value items = Value::from(*list);
      return python_type + "(" + items.repr() + ")";
    }
  }
  return "";
}

std::string Value::type_name() const {
  const char* const names[] = {"undefined", "none", "bool", "int", "float",
                               "str",       "list", "dict", "function"};
  if (kind == Kind::iterator || kind == Kind::view) return python_type;
  if (kind == Kind::list && is_tuple) return "tuple";
  return is_namespace ? "namespace" : names[int(kind)];
}

const Value* Value::unhashable() const {
  if (kind == Kind::list && is_tuple) {
    for (const Value& item : *list)
      if (const Value* part = item.unhashable()) return part;
    return nullptr;
  }
  return kind == Kind::list || kind == Kind::dict || kind == Kind::view ? this : nullptr;
}

bool operator==(const Value& a, const Value& b) {
  if (a.is_numeric() && b.is_numeric()) {
    if (a.kind != Value::Kind::number && b.kind != Value::Kind::number)
      return (a.kind == Value::Kind::integer ? a.integer : int64_t(a.boolean)) ==
             (b.kind == Value::Kind::integer ? b.integer : int64_t(b.boolean));
    return a.as_double() == b.as_double();
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Value::Kind::undefined: case Value::Kind::none: return true;
    case Value::Kind::string: return a.text.str() == b.text.str();
    case Value::Kind::list: return a.is_tuple == b.is_tuple && *a.list == *b.list;  // (1,) != [1]
    case Value::Kind::dict: {
      if (a.is_namespace || b.is_namespace) return a.dict == b.dict;
      if (a.dict->size() != b.dict->size()) return false;
      for (const auto& [k, v] : *a.dict)
        if (!(b.member(k) == v) || !b.member(k).is_defined()) return false;
      return true;
    }
    case Value::Kind::function: return a.function == b.function;
    case Value::Kind::iterator: return a.iterator == b.iterator;  // the same object
    case Value::Kind::view: {  // keys and items compare as sets; values only to themselves
      if (a.python_type != b.python_type) return false;
      if (a.python_type == "dict_values" || a.list->size() != b.list->size()) return a.list == b.list;
      for (const Value& item : *a.list)
        if (std::find(b.list->begin(), b.list->end(), item) == b.list->end()) return false;
      return true;
    }
    default: return false;
  }
}

bool less_than(const Value& a, const Value& b, bool* ok) {
  *ok = true;
  if (a.is_numeric() && b.is_numeric()) return a.as_double() < b.as_double();
  if (a.kind == Value::Kind::string && b.kind == Value::Kind::string)
    return a.text.str() < b.text.str();  // UTF-8 byte order is code point order
  if (a.kind == Value::Kind::list && b.kind == Value::Kind::list && a.is_tuple == b.is_tuple) {
    for (size_t i = 0; i < a.list->size() && i < b.list->size(); i++) {
      if ((*a.list)[i] == (*b.list)[i]) continue;
      return less_than((*a.list)[i], (*b.list)[i], ok);
    }
    return a.list->size() < b.list->size();
  }
  *ok = false;
  return false;
}

namespace {

// json.dumps' string: its escapes, and with ensure_ascii every character past ASCII as \uhhhh
// (a surrogate pair above U+FFFF).
std::string json_string(const std::string& s, bool ensure_ascii) {
  std::string out = "\"";
  size_t length = 0;
  for (size_t i = 0; i < s.size(); i += length) {
    const char32_t c = decode_utf8(s, i, length);
    char buf[16];
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || (ensure_ascii && c >= 0x7F && c < 0x10000)) {
          std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
          out += buf;
        } else if (ensure_ascii && c >= 0x10000) {
          const unsigned v = unsigned(c) - 0x10000;
          std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
          out += buf;
        } else {
          out.append(s, i, length);
        }
    }
  }
  return out + "\"";
}

void write_json(const Value& v, const JsonStyle& style, int depth, std::string& out) {
  std::string newline, closing;
  if (style.indent) {
    newline = "\n", closing = "\n";
    for (int d = 0; d <= depth; d++) newline += *style.indent;
    for (int d = 0; d < depth; d++) closing += *style.indent;
  }
  switch (v.kind) {
    case Value::Kind::undefined: throw TemplateError("Object of type Undefined is not JSON serializable");
    case Value::Kind::function: case Value::Kind::iterator: case Value::Kind::view:
      throw TemplateError("Object of type " + v.type_name() + " is not JSON serializable");
    case Value::Kind::none: out += "null"; return;
    case Value::Kind::boolean: out += v.boolean ? "true" : "false"; return;
    case Value::Kind::integer: out += std::to_string(v.integer); return;
    case Value::Kind::number:
      out += std::isnan(v.number) ? "NaN" : std::isinf(v.number) ? (v.number > 0 ? "Infinity" : "-Infinity")
                                                                   : float_repr(v.number);
      return;
    case Value::Kind::string: out += json_string(v.text.str(), style.ensure_ascii); return;
    case Value::Kind::list:
      if (v.list->empty()) { out += "[]"; return; }
      out += "[";
      for (size_t i = 0; i < v.list->size(); i++) {
        out += (i ? style.item_separator : "") + newline;
        write_json((*v.list)[i], style, depth + 1, out);
      }
      out += closing + "]";
      return;
    case Value::Kind::dict: {
      if (v.dict->empty()) { out += "{}"; return; }
      ValueDict items = *v.dict;
      if (style.sort_keys)
        std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      out += "{";
      for (size_t i = 0; i < items.size(); i++) {
        out += (i ? style.item_separator : "") + newline + json_string(items[i].first, style.ensure_ascii) + style.key_separator;
        write_json(items[i].second, style, depth + 1, out);
      }
      out += closing + "}";
      return;
    }
  }
}

}  // namespace

std::string to_json(const Value& v, const JsonStyle& style) {
  std::string out;
  write_json(v, style, 0, out);
  return out;
}

}  // namespace llm::jinja
