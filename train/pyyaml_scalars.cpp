// defines: resolve_plain_scalar (PyYAML's implicit resolvers), pyyaml_int, pyyaml_float,
// pyyaml_bool (its SafeConstructor's), apply_yaml_tags (its tags on a yaml-cpp tree)
#include "train/pyyaml_scalars.h"

#include <cctype>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <set>
#include <string_view>
#include <type_traits>

#include "io/python_text.h"
#include "train/config_fields.h"
#include "train/yaml_trailing_breaks.h"

namespace llm {
namespace {

std::string ascii_lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// Python's int(text, base) for base 2, 8, 10 or 16 of a text without underscores: surrounding
// whitespace, one sign, and for bases 2, 8 and 16 that base's prefix (0b, 0o, 0x, either case).
std::optional<int64_t> python_int(const std::string& text, int base) {
  const std::string s = python_strip(text);
  size_t i = 0;
  const bool negative = i < s.size() && s[i] == '-';
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) i++;
  if (base != 10 && i + 1 < s.size() && s[i] == '0') {
    const char prefix = static_cast<char>(std::tolower(static_cast<unsigned char>(s[i + 1])));
    if ((base == 2 && prefix == 'b') || (base == 8 && prefix == 'o') || (base == 16 && prefix == 'x')) i += 2;
  }
  if (i == s.size()) return std::nullopt;
  const uint64_t limit = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  uint64_t value = 0;
  for (; i < s.size(); i++) {
    const int ch = std::tolower(static_cast<unsigned char>(s[i]));
    const int digit = std::isdigit(ch) ? ch - '0' : std::isalpha(ch) ? ch - 'a' + 10 : base;
    if (digit >= base || value > (limit - static_cast<uint64_t>(digit)) / static_cast<uint64_t>(base)) return std::nullopt;
    value = value * static_cast<uint64_t>(base) + static_cast<uint64_t>(digit);
  }
  return negative ? static_cast<int64_t>(0 - value) : static_cast<int64_t>(value);
}

// Python's float(text): surrounding whitespace, a sign, inf, infinity or nan in any case, or a
// decimal with an optional exponent (no hexadecimal, which strtod would take).
std::optional<double> python_float(const std::string& text) {
  const std::string s = python_strip(text);
  const size_t sign = !s.empty() && (s[0] == '+' || s[0] == '-') ? 1 : 0;
  const std::string word = ascii_lower(s.substr(sign));
  const double negate = sign && s[0] == '-' ? -1.0 : 1.0;
  if (word == "inf" || word == "infinity") return negate * std::numeric_limits<double>::infinity();
  if (word == "nan") return std::numeric_limits<double>::quiet_NaN();
  if (s.empty() || s.find_first_not_of("0123456789.eE+-") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

// PyYAML's base 60 ("1:30" is 90): each part read by `part`, the last the units.
template <typename T, typename ReadPart>
std::optional<T> sexagesimal(const std::string& text, ReadPart part) {
  T value = 0, base = 1;
  size_t end = text.size();
  while (true) {
    const size_t colon = text.rfind(':', end - 1);
    const size_t begin = colon == std::string::npos ? 0 : colon + 1;
    const std::optional<T> digit = part(text.substr(begin, end - begin));
    if (!digit) return std::nullopt;
    if constexpr (std::is_integral_v<T>) {
      T scaled = 0;
      if (__builtin_mul_overflow(*digit, base, &scaled) || __builtin_add_overflow(value, scaled, &value)) return std::nullopt;
    } else {
      value += *digit * base;
    }
    if (colon == std::string::npos) return value;
    if constexpr (std::is_integral_v<T>) {
      if (__builtin_mul_overflow(base, T{60}, &base)) return std::nullopt;
    } else {
      base *= 60;
    }
    end = colon;
    if (end == 0) return part(std::string());  // a leading colon: an empty part, which fails
  }
}

// The value's text with PyYAML's sign read off: -1 or +1, and what follows the sign.
int read_sign(std::string& value) {
  const int sign = value[0] == '-' ? -1 : 1;
  if (value[0] == '+' || value[0] == '-') value.erase(0, 1);
  return sign;
}

std::string without_underscores(const std::string& text) {
  std::string out;
  for (char ch : text)
    if (ch != '_') out += ch;
  return out;
}

// "!!int" for YAML's own tags, the tag itself for any other.
std::string short_tag(const std::string& tag) {
  const std::string yaml = "tag:yaml.org,2002:";
  return tag.rfind(yaml, 0) == 0 ? "!!" + tag.substr(yaml.size()) : tag;
}

// PyYAML's resolver.py patterns, matched by hand (std::regex recurses once per character and
// overflows the stack on a long scalar). Whether `s` holds only characters of `allowed`, one at least.
bool only(std::string_view s, const char* allowed) {
  return !s.empty() && s.find_first_not_of(allowed) == std::string_view::npos;
}
constexpr const char* kDigits = "0123456789";

size_t skip_grouped_digits(std::string_view s, size_t at) {
  while (at < s.size() && (std::isdigit(static_cast<unsigned char>(s[at])) || s[at] == '_')) at++;
  return at;
}

// (?::[0-5]?[0-9])+ from `at`: the index after the last group, or npos without one.
size_t skip_base60_groups(std::string_view s, size_t at) {
  size_t end = std::string_view::npos;
  while (at < s.size() && s[at] == ':') {
    size_t digits = at + 1;
    while (digits < s.size() && std::isdigit(static_cast<unsigned char>(s[digits]))) digits++;
    const size_t n = digits - at - 1;
    if (n == 0 || n > 2 || (n == 2 && s[at + 1] > '5')) return std::string_view::npos;
    end = at = digits;
  }
  return end;
}

// (?:[eE][-+][0-9]+)? up to the end.
bool exponent_or_end(std::string_view t) {
  return t.empty() || (t.size() >= 3 && (t[0] == 'e' || t[0] == 'E') && (t[1] == '+' || t[1] == '-') && only(t.substr(2), kDigits));
}

std::string_view without_sign(std::string_view s) { return !s.empty() && (s[0] == '+' || s[0] == '-') ? s.substr(1) : s; }

// [-+]?0b[0-1_]+ | [-+]?0[0-7_]+ | [-+]?(?:0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+ | [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
bool yaml11_int(std::string_view s) {
  s = without_sign(s);
  if (s.size() > 1 && s[0] == '0') {
    if (s[1] == 'b') return only(s.substr(2), "01_");
    if (s[1] == 'x') return only(s.substr(2), "0123456789abcdefABCDEF_");
    return only(s.substr(1), "01234567_");
  }
  if (s == "0") return true;
  if (s.empty() || s[0] < '1' || s[0] > '9') return false;
  const size_t end = skip_grouped_digits(s, 1);
  return end == s.size() || skip_base60_groups(s, end) == s.size();
}

// [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)? | \.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
// | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]* | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)
bool yaml11_float(std::string_view s) {
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return true;
  if (s.size() > 1 && s[0] == '.' && std::isdigit(static_cast<unsigned char>(s[1])))
    return exponent_or_end(s.substr(skip_grouped_digits(s, 2)));
  s = without_sign(s);
  if (s == ".inf" || s == ".Inf" || s == ".INF") return true;
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  size_t at = skip_grouped_digits(s, 1);
  if (at < s.size() && s[at] == '.') return exponent_or_end(s.substr(skip_grouped_digits(s, at + 1)));
  at = skip_base60_groups(s, at);
  return at != std::string_view::npos && at < s.size() && s[at] == '.' && skip_grouped_digits(s, at + 1) == s.size();
}

std::string kind_of(const YAML::Node& n) { return n.IsSequence() ? "a list" : n.IsMap() ? "a map" : "a scalar"; }

// A !!float's value as a plain scalar that PyYAML resolves as a float again: 10.0, not 10 (an int).
std::string float_text(double v) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v < 0 ? "-.inf" : ".inf";
  std::string text = yaml_number(v);
  if (text.find('.') == std::string::npos) text.insert(std::min(text.find('e'), text.size()), ".0");
  return text;
}

// A double-quoted scalar's \N and \_ (U+0085, U+00A0) as UTF-8: yaml-cpp writes each as one byte
// (Latin-1), which no UTF-8 text holds, so in a text that was UTF-8 each such byte is one of them.
std::string repair_latin1_escapes(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const size_t bad = first_ill_formed_utf8(s.substr(i));
    if (bad == std::string::npos) return out + s.substr(i);
    out += s.substr(i, bad);
    const unsigned char byte = static_cast<unsigned char>(s[i + bad]);
    out += byte == 0x85 || byte == 0xA0 ? std::string("\xC2") + static_cast<char>(byte) : std::string(1, static_cast<char>(byte));
    i += bad + 1;
  }
  return out;
}

// Applies PyYAML's reading of tags to the nodes of one loaded text.
class TagReader {
 public:
  // `utf8`: the text was checked to be UTF-8 (a user's config; a checkpoint's may hold a path's raw bytes).
  TagReader(const std::string& text, bool utf8)
      : text_(text), utf8_(utf8), bom_(text.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0) {}

  void apply(YAML::Node node, const Where& w) {
    if (utf8_ && node.IsScalar() && first_ill_formed_utf8(node.Scalar()) != std::string::npos) {
      const std::string tag = node.Tag();
      node = repair_latin1_escapes(node.Scalar());
      node.SetTag(tag);
    }
    if (node.IsScalar()) restore_trailing_breaks(node);
    const std::string tag = node.Tag();
    if (tag.empty() || tag == "?") return;  // plain
    if ((tag == "!" || tag == "tag:yaml.org,2002:") && written_non_specific(node)) {
      // YAML's non-specific tag `!`: PyYAML resolves the scalar as a plain one, quoted or not.
      if (!node.IsScalar()) return;
      if (resolve_plain_scalar(node.Scalar()) == PlainScalar::null) node = YAML::Null;
      node.SetTag(node.IsNull() ? "" : "?");
      return;
    }
    if (tag == "!") return;  // quoted
    apply_explicit(node, short_tag(tag), w);
  }

  // The tags of what `node` holds, each container visited once (an alias is the node it names; a
  // structure may hold itself).
  void apply_below(const YAML::Node& node, const Where& w) {
    if (!(node.IsMap() || node.IsSequence()) || !seen_.insert({node.Mark().pos, static_cast<int>(node.Type())}).second)
      return;
    if (node.IsSequence()) {
      for (size_t i = 0; i < node.size(); i++) {
        const Where at = w.child("[" + std::to_string(i) + "]", node[i]);
        apply(node[i], at);
        apply_below(node[i], at);
      }
      return;
    }
    for (const auto& kv : node) {
      const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
      const Where at = w.child(w.key.empty() ? key : "." + key, kv.second);
      apply(kv.first, at);
      apply(kv.second, at);
      apply_below(kv.second, at);
    }
  }

 private:
  // Whether the properties written where the node starts (an anchor, then a tag, in either order)
  // hold the tag `!` alone. yaml-cpp reports both `! 5` and "5" with the tag "!"; its marks count
  // bytes after a byte-order mark.
  bool written_non_specific(const YAML::Node& node) const {
    size_t i = static_cast<size_t>(std::max(node.Mark().pos, 0)) + bom_;
    if (i < text_.size() && text_[i] == '&') i = token_end(i);
    if (i >= text_.size() || text_[i] != '!') return false;
    return i + 1 == text_.size() || std::isspace(static_cast<unsigned char>(text_[i + 1]));
  }
  // Where the property token at `at` (an anchor or a tag) ends, with the spaces after it.
  size_t token_end(size_t at) const {
    while (at < text_.size() && !std::isspace(static_cast<unsigned char>(text_[at]))) at++;
    while (at < text_.size() && std::isspace(static_cast<unsigned char>(text_[at]))) at++;
    return at;
  }

  // yaml-cpp's value of a quoted or folded scalar that ends in blank lines, mended to PyYAML's
  // (train/yaml_trailing_breaks.h); the node keeps its tag.
  void restore_trailing_breaks(YAML::Node node) const {
    size_t start = static_cast<size_t>(std::max(node.Mark().pos, 0)) + bom_;
    while (start < text_.size() && (text_[start] == '&' || text_[start] == '!')) start = token_end(start);
    const std::optional<std::string> mended = pyyaml_trailing_breaks(text_, start, node.Scalar());
    if (!mended) return;
    const std::string tag = node.Tag();
    node = *mended;
    node.SetTag(tag);
  }

  void apply_explicit(YAML::Node node, const std::string& name, const Where& w) {
    const auto need = [&](bool ok, const char* kind) {
      if (!ok) fail(w, std::string(kind) + " for the YAML tag " + name, kind_of(node));
    };
    const auto plain = [&](const std::string& text) {
      node = text;  // assigns the same node (a Node assigned a Node would rebind instead)
      node.SetTag("?");
    };
    if (name == "!!seq") return need(node.IsSequence(), "a list");
    if (name == "!!map") return need(node.IsMap(), "a map");
    if (name == "!!str" || name == "!!int" || name == "!!float" || name == "!!bool" || name == "!!null")
      need(node.IsScalar(), "a scalar");
    const std::string text = node.Scalar();
    if (name == "!!str") {
      node.SetTag("!");  // read as a quoted scalar: `!!str 010` is the string 010
    } else if (name == "!!null") {
      node = YAML::Null;
      node.SetTag("");
    } else if (name == "!!int") {
      const std::optional<int64_t> v = pyyaml_int(text);
      if (!v) fail(w, "an integer (YAML's !!int) within 64 bits", "'" + text + "'");
      plain(std::to_string(*v));
    } else if (name == "!!float") {
      const std::optional<double> v = pyyaml_float(text);
      if (!v) fail(w, "a number (YAML's !!float)", "'" + text + "'");
      plain(float_text(*v));
    } else if (name == "!!bool") {
      const std::optional<bool> v = pyyaml_bool(text);
      if (!v) fail(w, "true, false, yes, no, on or off (YAML's !!bool)", "'" + text + "'");
      plain(*v ? "true" : "false");
    } else if (name == "!!binary" || name == "!!timestamp" || name == "!!set" || name == "!!omap" || name == "!!pairs") {
      fail(w, "a value a config key takes (a string, number, bool, list or map)", "YAML's " + name);
    } else if (name != "!!merge") {  // a merge key: train/config_yaml.cpp's MergeKeys
      fail(w, "a YAML tag that yaml.safe_load reads (!!str, !!int, !!float, !!bool, !!null, !!seq, !!map)", name);
    }
  }

  const std::string& text_;
  const bool utf8_;
  const size_t bom_;
  std::set<std::pair<int, int>> seen_;
};

}  // namespace

PlainScalar resolve_plain_scalar(const std::string& text) {
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") return PlainScalar::null;
  for (const char* word : {"yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
                           "on", "On", "ON", "off", "Off", "OFF"})
    if (text == word) return PlainScalar::boolean;
  if (yaml11_int(text)) return PlainScalar::integer;
  if (yaml11_float(text)) return PlainScalar::floating;
  return PlainScalar::string;
}

std::optional<int64_t> pyyaml_int(const std::string& text) {
  std::string value = without_underscores(text);
  if (value.empty()) return std::nullopt;  // PyYAML: IndexError
  const int sign = read_sign(value);
  std::optional<int64_t> v;
  if (value == "0") {
    v = 0;
  } else if (value.rfind("0b", 0) == 0) {
    v = python_int(value.substr(2), 2);
  } else if (value.rfind("0x", 0) == 0) {
    v = python_int(value.substr(2), 16);
  } else if (value.empty()) {
    return std::nullopt;
  } else if (value[0] == '0') {
    v = python_int(value, 8);
  } else if (value.find(':') != std::string::npos) {
    v = sexagesimal<int64_t>(value, [](const std::string& part) { return python_int(part, 10); });
  } else {
    v = python_int(value, 10);
  }
  if (!v || (sign < 0 && *v == std::numeric_limits<int64_t>::min())) return std::nullopt;
  return sign * *v;
}

std::optional<double> pyyaml_float(const std::string& text) {
  std::string value = ascii_lower(without_underscores(text));
  if (value.empty()) return std::nullopt;  // PyYAML: IndexError
  const int sign = read_sign(value);
  if (value == ".inf") return sign * std::numeric_limits<double>::infinity();
  if (value == ".nan") return std::numeric_limits<double>::quiet_NaN();
  const std::optional<double> v = value.find(':') != std::string::npos ? sexagesimal<double>(value, python_float)
                                                                        : python_float(value);
  if (!v) return std::nullopt;
  return sign * *v;
}

std::optional<bool> pyyaml_bool(const std::string& text) {
  const std::string s = ascii_lower(text);
  if (s == "yes" || s == "true" || s == "on") return true;
  if (s == "no" || s == "false" || s == "off") return false;
  return std::nullopt;
}

void apply_yaml_tags(YAML::Node root, const std::string& text, bool utf8, const Where& where) {
  TagReader reader(text, utf8);
  Where top = where;
  if (top.key.empty()) top.key = "(the document)";
  reader.apply(root, top);
  reader.apply_below(root, where);
}

}  // namespace llm
