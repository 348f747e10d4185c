// defines: percent_format
#include "io/jinja_format.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "io/python_text.h"

namespace llm::jinja {
namespace {

[[noreturn]] void fail(const std::string& what) { throw TemplateError(what); }

// Python pads and cuts by characters: UTF-8 continuation bytes do not count.
size_t code_points(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string first_code_points(const std::string& s, size_t count) {
  size_t at = 0;
  for (size_t seen = 0; at < s.size(); at++)
    if ((static_cast<unsigned char>(s[at]) & 0xC0) != 0x80 && seen++ == count) break;
  return s.substr(0, at);
}

std::string utf8_of(int64_t code_point) {
  if (code_point < 0 || code_point > 0x10FFFF) fail("%c arg not in range(0x110000)");
  const auto c = static_cast<uint32_t>(code_point);
  std::string out;
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6)), out += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += char(0xE0 | (c >> 12)), out += char(0x80 | ((c >> 6) & 0x3F)), out += char(0x80 | (c & 0x3F));
  } else {
    out += char(0xF0 | (c >> 18)), out += char(0x80 | ((c >> 12) & 0x3F)), out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  }
  return out;
}

// Python's ascii() of a repr: every character past ASCII as \xhh, \uhhhh or \Uhhhhhhhh.
std::string ascii_of(const std::string& repr) {
  std::string out;
  for (size_t i = 0, length = 1; i < repr.size(); i += length) {
    const char32_t c = decode_utf8(repr, i, length);
    if (c < 0x80) {
      out += repr[i];
      continue;
    }
    char escape[16];
    std::snprintf(escape, sizeof escape, c < 0x100 ? "\\x%02x" : c < 0x10000 ? "\\u%04x" : "\\U%08x", unsigned(c));
    out += escape;
  }
  return out;
}

// One conversion: %[(key)][flags][width][.precision][length]type.
struct Spec {
  std::optional<std::string> key;
  bool left = false, zero = false, plus = false, space = false, alternate = false;
  int64_t width = -1, precision = -1;
  char type = 0;
};

// `body` (sign and prefix first, `lead` bytes of it) widened to spec.width as Python widens it.
std::string widened(const std::string& body, size_t lead, const Spec& spec, bool numeric) {
  const size_t length = code_points(body);
  if (spec.width < 0 || size_t(spec.width) <= length) return body;
  const std::string fill(size_t(spec.width) - length, numeric && spec.zero && !spec.left ? '0' : ' ');
  if (spec.left) return body + std::string(fill.size(), ' ');
  return fill[0] == '0' ? body.substr(0, lead) + fill + body.substr(lead) : fill + body;
}

std::string integer_text(const Value& v, const Spec& spec) {
  const char type = spec.type;
  if (v.kind == Value::Kind::number && (type == 'x' || type == 'X' || type == 'o'))
    fail(std::string("%") + type + " format: an integer is required, not float");
  if (!v.is_numeric()) fail(std::string("%") + type + " format: a real number is required, not " + v.type_name());
  if (v.kind == Value::Kind::number && !std::isfinite(v.number))
    fail(std::string("cannot convert float ") + (std::isnan(v.number) ? "NaN" : "infinity") + " to integer");
  const unsigned base = type == 'x' || type == 'X' ? 16 : type == 'o' ? 8 : 10;
  bool negative = false;
  std::string digits;
  if (v.kind == Value::Kind::number && std::fabs(v.number) >= 9.2e18) {
    // Python's int() of a float this large is its exact value: printf's %.0f writes it so.
    char text[400];
    std::snprintf(text, sizeof text, "%.0f", std::fabs(std::trunc(v.number)));
    digits = text;
    negative = v.number < 0;
  } else {
    const int64_t i = v.kind == Value::Kind::number ? int64_t(v.number) : v.kind == Value::Kind::boolean ? int64_t(v.boolean) : v.integer;
    negative = i < 0;
    uint64_t magnitude = negative ? uint64_t(0) - uint64_t(i) : uint64_t(i);
    const char* digits_of = type == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
    do digits.insert(digits.begin(), digits_of[magnitude % base]), magnitude /= base;
    while (magnitude > 0);
  }
  if (spec.precision > int64_t(digits.size())) digits.insert(0, size_t(spec.precision) - digits.size(), '0');
  std::string lead = negative ? "-" : spec.plus ? "+" : spec.space ? " " : "";
  if (spec.alternate && base != 10) lead += type == 'o' ? "0o" : type == 'x' ? "0x" : "0X";
  return widened(lead + digits, lead.size(), spec, true);
}

std::string float_text(const Value& v, const Spec& spec) {
  if (!v.is_numeric()) fail("must be real number, not " + v.type_name());
  std::string c_format = "%";
  for (auto [on, flag] : {std::pair{spec.left, '-'}, {spec.plus, '+'}, {spec.space, ' '}, {spec.alternate, '#'}, {spec.zero, '0'}})
    if (on) c_format += flag;
  if (spec.width >= 0) c_format += std::to_string(spec.width);
  c_format += "." + std::to_string(spec.precision < 0 ? 6 : std::min<int64_t>(spec.precision, 500));
  c_format += spec.type;
  const int length = std::snprintf(nullptr, 0, c_format.c_str(), v.as_double());
  std::string out(size_t(std::max(length, 0)) + 1, '\0');
  std::snprintf(out.data(), out.size(), c_format.c_str(), v.as_double());
  out.pop_back();
  return out;
}

// The value's text under one conversion; a string's %s keeps its sources.
Text converted(const Value& v, const Spec& spec) {
  if (!v.is_defined() && spec.type != 's' && spec.type != 'r' && spec.type != 'a')
    fail("'" + v.name + "' is undefined");  // str() and repr() of Undefined work; int() and float() raise
  switch (spec.type) {
    case 's': {
      Text text = v.to_text();
      if (spec.precision >= 0 && code_points(text.str()) > size_t(spec.precision))
        text = text.bytes(0, first_code_points(text.str(), size_t(spec.precision)).size());
      if (spec.width < 0) return text;
      return Text(widened(text.str(), 0, spec, false), text.common_source());
    }
    case 'r': case 'a': {
      std::string repr = spec.type == 'a' ? ascii_of(v.repr()) : v.repr();
      if (spec.precision >= 0) repr = first_code_points(repr, size_t(spec.precision));
      return Text(widened(repr, 0, spec, false));
    }
    case 'd': case 'i': case 'u': case 'x': case 'X': case 'o':
      return Text(integer_text(v, spec));
    case 'e': case 'E': case 'f': case 'F': case 'g': case 'G':
      return Text(float_text(v, spec));
    case 'c': {
      std::string c;
      if (v.kind == Value::Kind::integer || v.kind == Value::Kind::boolean) c = utf8_of(v.kind == Value::Kind::integer ? v.integer : v.boolean);
      else if (v.kind == Value::Kind::string && code_points(v.text.str()) == 1) c = v.text.str();
      else fail("%c requires an int or a unicode character, not " + v.type_name());
      return Text(widened(c, 0, spec, false));
    }
    default:
      fail(std::string("unsupported format character '") + spec.type + "'");
  }
}

}  // namespace

Text percent_format(const Text& format, const Value& args) {
  const std::string f = format.str();
  const bool tuple = args.kind == Value::Kind::list && args.is_tuple;
  const bool mapping = args.kind == Value::Kind::dict && !args.is_namespace;
  const std::vector<Value> values = tuple ? *args.list : std::vector<Value>{args};
  size_t next = 0;
  auto take = [&]() -> const Value& {
    if (next >= values.size()) fail("not enough arguments for format string");
    return values[next++];
  };
  auto number_at = [&](size_t& i) {  // a width or precision: digits, or * taking a value
    if (i < f.size() && f[i] == '*') {
      const Value& v = take();
      if (v.kind != Value::Kind::integer) fail("* wants int");
      if (v.integer > 100000 || v.integer < -100000) fail("width too big");
      i++;
      return v.integer;
    }
    int64_t n = 0;
    for (; i < f.size() && std::isdigit(static_cast<unsigned char>(f[i])); i++)
      if ((n = n * 10 + (f[i] - '0')) > 100000) fail("width too big");
    return n;
  };
  Text out;
  size_t literal = 0;
  for (size_t i = 0; i < f.size(); i++) {
    if (f[i] != '%') continue;
    out.append(format.bytes(literal, i));
    Spec spec;
    size_t at = i + 1;
    if (at < f.size() && f[at] == '(') {
      const size_t close = f.find(')', at);
      if (close == std::string::npos) fail("incomplete format key");
      spec.key = f.substr(at + 1, close - at - 1);
      at = close + 1;
    }
    for (; at < f.size() && std::string("-+ #0").find(f[at]) != std::string::npos; at++)
      (f[at] == '-' ? spec.left : f[at] == '+' ? spec.plus : f[at] == ' ' ? spec.space : f[at] == '#' ? spec.alternate : spec.zero) = true;
    const bool has_width = at < f.size() && (f[at] == '*' || std::isdigit(static_cast<unsigned char>(f[at])));
    if (has_width) spec.width = number_at(at);
    if (spec.width < 0 && has_width) spec.left = true, spec.width = -spec.width;  // Python: a negative * width left-aligns
    if (at < f.size() && f[at] == '.') spec.precision = std::max<int64_t>(number_at(++at), 0);  // a negative * one is 0
    while (at < f.size() && (f[at] == 'h' || f[at] == 'l' || f[at] == 'L')) at++;
    if (at >= f.size()) fail("incomplete format");
    spec.type = f[at];
    if (spec.type == '%') {
      out.append("%", kTemplateSource);
    } else if (spec.key) {
      if (!args.is_defined()) fail("'" + args.name + "' is undefined");
      if (!mapping) fail("format requires a mapping");
      const auto found = std::find_if(args.dict->begin(), args.dict->end(), [&](const auto& e) { return e.first == *spec.key; });
      if (found == args.dict->end()) fail("KeyError: " + Value::from(*spec.key).repr());
      out.append(converted(found->second, spec));
      next = values.size();  // CPython: a conversion after a keyed one finds no argument left
    } else {
      out.append(converted(take(), spec));
    }
    literal = at + 1;
    i = at;
  }
  out.append(format.bytes(literal, f.size()));
  // CPython lets an unused argument pass when it has __getitem__ (a dict, a list), not otherwise.
  const bool subscriptable = mapping || (args.kind == Value::Kind::list && !tuple) || !args.is_defined();
  if (next < values.size() && !subscriptable) fail("not all arguments converted during string formatting");
  return out;
}

}  // namespace llm::jinja
