// defines: apply_number_filter
#include "io/jinja_number_filters.h"

#include <cmath>
#include <cstdlib>

#include "io/jinja_methods.h"
#include "io/python_text.h"

namespace llm::jinja {
namespace {

using Kind = Value::Kind;

// Digits of `base` with single underscores between them (Python's literal rule), underscores
// dropped; empty when the text breaks the rule.
std::string digits_of(const std::string& s, int base) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    const char c = char(std::tolower(static_cast<unsigned char>(s[i])));
    const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'z' ? c - 'a' + 10 : -1;
    if (c == '_' && i > 0 && i + 1 < s.size() && s[i + 1] != '_') continue;
    if (digit < 0 || digit >= base) return "";
    out += c;
  }
  return out;
}

// Python's int(text, base) for bases 2 to 36 (or 0: the prefix says); false where it raises
// ValueError. A value past int64 is refused (Python's ints have no bound).
bool python_int(const std::string& text, int64_t base, int64_t& out) {
  std::string s = python_strip(text);
  const bool negative = !s.empty() && s[0] == '-';
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.erase(0, 1);
  const char prefix = s.size() > 1 && s[0] == '0' ? char(std::tolower(static_cast<unsigned char>(s[1]))) : 0;
  const int64_t prefix_base = prefix == 'x' ? 16 : prefix == 'o' ? 8 : prefix == 'b' ? 2 : 0;
  if (prefix_base != 0 && (base == 0 || base == prefix_base)) {
    base = prefix_base;
    s.erase(0, 2);
    if (!s.empty() && s[0] == '_') s.erase(0, 1);  // int("0x_1f", 16) is 31
  } else if (base == 0) {
    base = 10;
    if (s.size() > 1 && s[0] == '0' && s.find_first_not_of("0_") != std::string::npos) return false;  // "010"
  }
  if (base < 2 || base > 36) fail("int() base must be >= 2 and <= 36, or 0");
  const std::string digits = digits_of(s, int(base));
  if (digits.empty()) return false;
  errno = 0;
  const unsigned long long magnitude = std::strtoull(digits.c_str(), nullptr, int(base));
  if (errno == ERANGE || magnitude > (negative ? 9223372036854775808ULL : 9223372036854775807ULL))
    fail("int() of '" + text + "': past int64");
  out = negative ? int64_t(0 - magnitude) : int64_t(magnitude);
  return true;
}

// Python's float(text): decimal digits (underscores between them), a point, an exponent, or
// inf / infinity / nan in any case; false where it raises ValueError.
bool python_float(const std::string& text, double& out) {
  std::string s = python_strip(text);
  std::string sign;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) sign = s.substr(0, 1), s.erase(0, 1);
  std::string lower;
  for (char c : s) lower += char(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "inf" || lower == "infinity" || lower == "nan") {
    out = lower == "nan" ? NAN : sign == "-" ? -INFINITY : INFINITY;
    return true;
  }
  const size_t e = lower.find('e');
  const std::string mantissa = lower.substr(0, e), exponent = e == std::string::npos ? "" : lower.substr(e + 1);
  const size_t point = mantissa.find('.');
  const std::string whole = mantissa.substr(0, point), fraction = point == std::string::npos ? "" : mantissa.substr(point + 1);
  const std::string whole_digits = whole.empty() ? "" : digits_of(whole, 10);
  const std::string fraction_digits = fraction.empty() ? "" : digits_of(fraction, 10);
  if ((!whole.empty() && whole_digits.empty()) || (!fraction.empty() && fraction_digits.empty()) ||
      (whole_digits.empty() && fraction_digits.empty()))
    return false;
  std::string clean = sign + (whole_digits.empty() ? "0" : whole_digits) + "." + fraction_digits;
  if (e != std::string::npos) {
    const bool exponent_signed = !exponent.empty() && (exponent[0] == '-' || exponent[0] == '+');
    const std::string exponent_digits = digits_of(exponent.substr(exponent_signed ? 1 : 0), 10);
    if (exponent_digits.empty()) return false;
    clean += "e" + (exponent_signed ? exponent.substr(0, 1) : "") + exponent_digits;
  }
  out = std::strtod(clean.c_str(), nullptr);
  return true;
}

// do_int: a string by int(text, base), else int(value); failing that int(float(value)); failing
// that the default.
Value to_int(const Value& v, const Value& fallback, int64_t base) {
  int64_t i = 0;
  double d = 0;
  if (v.kind == Kind::string && python_int(v.text.str(), base, i)) return Value::from(i);
  if (v.kind == Kind::integer || v.kind == Kind::boolean) return Value::from(v.kind == Kind::integer ? v.integer : int64_t(v.boolean));
  if (v.kind == Kind::number) d = v.number;
  else if (v.kind != Kind::string || !python_float(v.text.str(), d)) return fallback;
  if (!std::isfinite(d)) return fallback;  // int(nan), int(inf): ValueError, OverflowError, which do_int catches
  if (std::fabs(d) >= 9.2233720368547758e18) fail("int() of " + std::to_string(d) + ": past int64");
  return Value::from(int64_t(std::trunc(d)));
}

// Python's round(x, ndigits): the decimal nearest the double's exact value, ties to even.
double round_half_even(double x, int64_t ndigits) {
  if (!std::isfinite(x) || ndigits > 300 || (ndigits >= 0 && std::fabs(x) >= 1e17)) return x;  // no fraction to round
  if (ndigits < 0) {
    const double scale = std::pow(10.0, double(-ndigits));
    return std::nearbyint(x / scale) * scale;
  }
  char printed[512];
  std::snprintf(printed, sizeof printed, "%.*f", int(ndigits), x);  // glibc: exact, ties to even
  return std::strtod(printed, nullptr);
}

Value round_value(const Value& v, std::vector<Value>& args, Kwargs& kwargs) {
  const int64_t precision = integer_of(argument(args, kwargs, 0, "precision", Value::from(int64_t(0))), "round");
  const Value method = argument(args, kwargs, 1, "method", Value::from("common"));
  const std::string how = method.kind == Kind::string ? method.text.str() : "";
  if (how != "common" && how != "ceil" && how != "floor") fail("method must be common, ceil or floor");
  if (!v.is_numeric()) fail("round expects a number, got " + v.type_name());
  if (how != "common") {  // math.ceil/floor(value * 10**precision) / 10**precision: a float
    const double scale = std::pow(10.0, double(precision));
    const double whole = how == "ceil" ? std::ceil(v.as_double() * scale) : std::floor(v.as_double() * scale);
    return Value::from((whole + 0.0) / scale);  // Python's ceil and floor are ints: no -0.0
  }
  if (v.kind == Kind::number) return Value::from(round_half_even(v.number, precision));
  const int64_t i = v.kind == Kind::integer ? v.integer : int64_t(v.boolean);
  if (precision >= 0) return Value::from(i);  // round(int) stays an int
  if (precision < -18) return Value::from(int64_t(0));
  int64_t scale = 1;
  for (int64_t k = 0; k < -precision; k++) scale *= 10;
  int64_t q = i / scale, r = i % scale;
  if (r < 0) q--, r += scale;  // floor
  if (2 * r > scale || (2 * r == scale && q % 2 != 0)) q++;
  return Value::from(q * scale);
}

}  // namespace

std::optional<Value> apply_number_filter(const std::string& name, const Value& v, std::vector<Value>& args,
                                         Kwargs& kwargs) {
  if (name != "int" && name != "float" && name != "round" && name != "abs") return std::nullopt;
  if (!v.is_defined()) fail("'" + v.name + "' is undefined");
  if (name == "int")
    return to_int(v, argument(args, kwargs, 0, "default", Value::from(int64_t(0))),
                  integer_of(argument(args, kwargs, 1, "base", Value::from(int64_t(10))), "int"));
  if (name == "float") {
    const Value fallback = argument(args, kwargs, 0, "default", Value::from(0.0));
    double d = 0;
    if (v.is_numeric()) return Value::from(v.as_double());
    return v.kind == Kind::string && python_float(v.text.str(), d) ? Value::from(d) : fallback;
  }
  if (name == "round") return round_value(v, args, kwargs);
  if (!v.is_numeric()) fail("bad operand type for abs(): '" + v.type_name() + "'");
  if (v.kind == Kind::number) return Value::from(std::fabs(v.number));
  const int64_t i = v.kind == Kind::integer ? v.integer : int64_t(v.boolean);
  if (i == INT64_MIN) fail("integer overflow");
  return Value::from(i < 0 ? -i : i);
}

}  // namespace llm::jinja
