// defines: the config's value readers and YAML writers (train/config_fields.h): Where, fail,
// describe, Range, read_*, for_fields, yaml_number, yaml_string
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <regex>
#include <string_view>

#include "engine/user_error.h"
#include "io/python_text.h"
#include "train/config_fields.h"
#include "train/pyyaml_scalars.h"
#include "train/unfrozen_parameters.h"  // kMaxPatternLength

namespace llm {
namespace {

// YAML 1.1 (PyYAML's, so Axolotl's) numbers may group their digits with underscores
// (sequence_len: 500_000): each underscore after a digit is dropped. A leading one is not a
// number's, and stays to make the text fail.
std::string without_digit_groups(const std::string& text) {
  std::string s;
  for (char ch : text)
    if (ch != '_' || s.empty() || !std::isdigit(static_cast<unsigned char>(s.back()))) s += ch;
  return s;
}

bool parse_int_in_base(const std::string& s, int base, int64_t& out) {
  if (s.empty() || std::isspace(static_cast<unsigned char>(s[0]))) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, base);
  if (errno != 0 || *end != '\0') return false;
  out = v;
  return true;
}

// A whole number written with a zero fraction, as pydantic's int reads a string: "2.0" and "2.00"
// but not "2.". The integer part out.
bool zero_fraction(const std::string& s, std::string& whole) {
  const size_t point = s.find('.');
  if (point == std::string::npos || point == 0) return false;
  const std::string fraction = s.substr(point + 1);
  if (fraction.empty() || fraction.find_first_not_of('0') != std::string::npos) return false;
  whole = s.substr(0, point);
  return true;
}

// `plain`: an unquoted scalar, read as PyYAML reads it (train/pyyaml_scalars.h): an int (010 is
// 8 to Axolotl, 0x1F, 1:30 in base 60), or a float that pydantic's int takes when whole (2.0, 1.e+3).
// A quoted one, or a plain one PyYAML reads as a string (09), is pydantic's int of the text: Python's
// int(text) after str.strip, or a zero fraction.
bool parse_int(const std::string& text, int64_t& out, bool plain = false) {
  const PlainScalar kind = plain ? resolve_plain_scalar(text) : PlainScalar::string;
  if (kind == PlainScalar::integer) {
    const std::optional<int64_t> v = pyyaml_int(text);
    if (v) out = *v;
    return v.has_value();
  }
  if (kind == PlainScalar::floating) {
    const std::optional<double> v = pyyaml_float(text);
    if (!v || !std::isfinite(*v) || *v != std::floor(*v) || std::fabs(*v) >= 0x1p63) return false;
    out = static_cast<int64_t>(*v);
    return true;
  }
  std::string s = without_digit_groups(python_strip(text));
  if (std::string whole; zero_fraction(s, whole)) s = whole;  // "010.0" is ten
  return parse_int_in_base(s, 10, out);
}

bool parse_double(const std::string& text, double& out) {
  const std::string s = without_digit_groups(python_strip(text));
  if (s.empty() || std::isspace(static_cast<unsigned char>(s[0]))) return false;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || *end != '\0' || !std::isfinite(v)) return false;
  out = v;
  return true;
}

// The shortest text that reads back as exactly `v` (so a saved config re-parses bit for bit,
// while 0.1 still prints as 0.1 rather than %.17g's 0.10000000000000001).
template <typename Float>
std::string shortest(Float v) {
  char buf[40];
  if (v == 0) return "0";  // -0.0 too: "-0" reads back as the integer 0, another text when written again
  if (v == std::floor(v) && std::fabs(v) < 1e15) {  // 500000, not %g's 5e+05
    std::snprintf(buf, sizeof buf, "%.0f", static_cast<double>(v));
    return buf;
  }
  for (int precision = 1; precision <= 17; precision++) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, static_cast<double>(v));
    if (static_cast<Float>(std::strtod(buf, nullptr)) == v) break;
  }
  return buf;
}

}  // namespace

std::string Where::str() const {
  return file + (line > 0 ? ":" + std::to_string(line) : "") + ": " + (cli ? "--" : "") + key;
}

Where Where::child(const std::string& sub, const YAML::Node& node) const {
  Where w = *this;
  w.key += sub;
  if (!cli && node.Mark().line >= 0) w.line = node.Mark().line + 1;
  return w;
}

void fail(const Where& w, const std::string& expected, const std::string& got) {
  throw UserError(w.str() + ": expected " + expected + ", got " + got);
}

std::string describe(const YAML::Node& n) {
  if (n.IsSequence()) return n.size() ? "a list" : "an empty list";
  if (n.IsMap()) return "a map";
  if (!n.IsScalar()) return "nothing";
  double ignored;
  return parse_double(n.Scalar(), ignored) ? n.Scalar() : "'" + n.Scalar() + "'";
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string Range::text() const {
  if (lo == -kInf && hi == kInf) return "a finite number";
  if (hi == kInf) return std::string("a number ") + (lo_open ? "> " : ">= ") + num(lo);
  return std::string("a number in ") + (lo_open ? "(" : "[") + num(lo) + ", " + num(hi) +
         (hi_open ? ")" : "]");
}

bool Range::contains(double v) const {
  return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
}

std::string read_string(const YAML::Node& n, const Where& w) {
  if (!n.IsScalar() || n.Scalar().empty()) fail(w, "a non-empty string", describe(n));
  // A path with a NUL byte names another file than it reads as (the system stops at the NUL).
  if (n.Scalar().find('\0') != std::string::npos) fail(w, "a string without NUL bytes", "one with a NUL byte");
  return n.Scalar();
}

std::string integer_text(int64_t min, int64_t max) {
  if (max == kNoMax) return "an integer >= " + std::to_string(min);
  return "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
}

std::vector<std::string> read_string_list(const YAML::Node& n, const Where& w) {
  if (n.IsScalar()) return {read_string(n, w)};  // one name for a list of one
  if (!n.IsSequence()) fail(w, "a list of names", describe(n));
  std::vector<std::string> out;
  for (size_t i = 0; i < n.size(); i++) out.push_back(read_string(n[i], w.child("[" + std::to_string(i) + "]", n[i])));
  return out;
}

std::string yaml_list(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + yaml_string(s);
  return "[" + out + "]";
}

void check_pattern(const std::string& pattern, const Where& w, const std::string& expected) {
  if (pattern.size() > kMaxPatternLength)
    fail(w, expected + " of at most " + std::to_string(kMaxPatternLength) + " characters",
         std::to_string(pattern.size()) + " characters");
  try {
    std::regex compiled(pattern);
  } catch (const std::regex_error& e) {
    fail(w, expected, "'" + pattern + "' (" + e.what() + ")");
  }
}

int64_t read_int(const YAML::Node& n, const Where& w, int64_t min, int64_t max) {
  int64_t v = 0;
  if (!n.IsScalar() || !parse_int(n.Scalar(), v, n.Tag() != "!") || v < min || v > max)
    fail(w, integer_text(min, max), describe(n));
  return v;
}

double read_double(const YAML::Node& n, const Where& w, const Range& range) {
  // A plain scalar as PyYAML reads it (010 is 8, 1:30.5 is 90.5, .inf infinite), then pydantic's
  // float; a quoted one, or a plain one PyYAML reads as a string (1e-5), is Python's float(text).
  double v = 0;
  bool read = false;
  if (n.IsScalar()) {
    const PlainScalar kind = n.Tag() != "!" ? resolve_plain_scalar(n.Scalar()) : PlainScalar::string;
    if (kind == PlainScalar::integer) {
      const std::optional<int64_t> whole = pyyaml_int(n.Scalar());
      read = whole.has_value(), v = static_cast<double>(whole.value_or(0));
    } else if (kind == PlainScalar::floating) {
      v = pyyaml_float(n.Scalar()).value_or(0.0);
      read = std::isfinite(v);
    } else {
      read = parse_double(n.Scalar(), v);
    }
  }
  if (!read || !range.contains(v)) fail(w, range.text(), describe(n));
  return v;
}

bool read_bool(const YAML::Node& n, const Where& w, const std::string& note) {
  std::string s = n.IsScalar() ? n.Scalar() : "";
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  // YAML 1.1's words, and what pydantic's bool takes besides (Axolotl's fields are pydantic's).
  if (s == "true" || s == "yes" || s == "on" || s == "t" || s == "y" || s == "1") return true;
  if (s == "false" || s == "no" || s == "off" || s == "f" || s == "n" || s == "0") return false;
  fail(w, "true or false" + note, describe(n));
}

std::string read_choice(const YAML::Node& n, const Where& w,
                        const std::vector<std::string>& allowed) {
  const std::string expected = "one of " + join(allowed);
  if (!n.IsScalar()) fail(w, expected, describe(n));
  for (const std::string& a : allowed)
    if (n.Scalar() == a) return a;
  fail(w, expected, describe(n));
}

void for_fields(const YAML::Node& n, const Where& w, const std::string& expected,
                const FieldVisitor& visit) {
  if (!n.IsMap()) fail(w, expected, describe(n));
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) fail(w, expected, "a map with a " + describe(kv.first) + " as a key");
    const std::string& key = kv.first.Scalar();
    if (!kv.second.IsNull()) visit(key, kv.second, w.child("." + key, kv.second));
  }
}

std::string yaml_number(double v) { return shortest(v); }
std::string yaml_number(float v) { return shortest(v); }

std::string yaml_string(const std::string& s) {
  bool plain = !s.empty() && s[0] != '-' && s != "null" && s != "Null" && s != "NULL";
  for (char ch : s)
    plain = plain && (std::isalnum(static_cast<unsigned char>(ch)) ||
                      std::string_view("_./+-").find(ch) != std::string_view::npos);
  if (s.empty() || plain) return s;
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += std::string("\\") + ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(ch));
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string ReadContext::beside_config(const std::string& path) const {
  namespace fs = std::filesystem;
  // A file found is named by its absolute path, so the config a checkpoint keeps names the same
  // files whatever directory a resume starts from.
  const auto found = [](const fs::path& p) {
    std::error_code ec;
    return fs::exists(p, ec) ? std::optional<std::string>(fs::absolute(p, ec).lexically_normal().string()) : std::nullopt;
  };
  if (path.empty() || fs::path(path).is_absolute()) return path;
  const fs::path config_dir = fs::path(source).parent_path();
  if (!config_dir.empty())
    if (std::optional<std::string> beside = found(config_dir / path)) return *beside;
  return found(path).value_or(path);
}

}  // namespace llm
