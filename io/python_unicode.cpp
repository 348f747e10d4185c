// defines: python_upper, python_lower, python_title, python_capitalize, python_swapcase, python_casefold,
// python_islower, python_isupper, python_istitle, python_is_printable, python_is_class
#include "io/python_unicode.h"

#include <unicode/bytestream.h>
#include <unicode/casemap.h>
#include <unicode/stringoptions.h>
#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <vector>

namespace llm {
namespace {

std::vector<UChar32> code_points_of(const std::string& s) {
  std::vector<UChar32> out;
  const auto* bytes = reinterpret_cast<const uint8_t*>(s.data());
  const int32_t length = int32_t(s.size());
  for (int32_t i = 0; i < length;) {
    UChar32 c;
    U8_NEXT(bytes, i, length, c);
    out.push_back(c < 0 ? 0xFFFD : c);  // the JSON and YAML readers let no ill-formed UTF-8 in
  }
  return out;
}

enum class Mapping { upper, lower, title, fold };

void append_code_point(UChar32 c, std::string& out) {
  uint8_t encoded[U8_MAX_LENGTH];
  int32_t length = 0;
  U8_APPEND_UNSAFE(encoded, length, c);
  out.append(reinterpret_cast<const char*>(encoded), size_t(length));
}

// One code point's full case mapping (SpecialCasing's unconditional ones included), appended.
void append_mapped(UChar32 c, Mapping mapping, std::string& out) {
  std::string one_char;
  append_code_point(c, one_char);
  const icu::StringPiece one(one_char);
  UErrorCode status = U_ZERO_ERROR;
  icu::StringByteSink<std::string> sink(&out);
  if (mapping == Mapping::upper) icu::CaseMap::utf8ToUpper("", 0, one, sink, nullptr, status);
  if (mapping == Mapping::lower) icu::CaseMap::utf8ToLower("", 0, one, sink, nullptr, status);
  if (mapping == Mapping::title)
    icu::CaseMap::utf8ToTitle("", U_TITLECASE_WHOLE_STRING | U_TITLECASE_NO_BREAK_ADJUSTMENT, nullptr, one,
                              sink, nullptr, status);
  if (mapping == Mapping::fold) icu::CaseMap::utf8Fold(U_FOLD_CASE_DEFAULT, one, sink, nullptr, status);
}

bool cased(UChar32 c) { return u_hasBinaryProperty(c, UCHAR_CASED); }
bool case_ignorable(UChar32 c) { return u_hasBinaryProperty(c, UCHAR_CASE_IGNORABLE); }

// CPython's lower_ucs4: the full lower mapping, but a capital sigma ending a word (a cased
// letter before it, none after, case-ignorable characters skipped) becomes final sigma.
void append_lower_at(const std::vector<UChar32>& text, size_t i, std::string& out) {
  if (text[i] != 0x3A3) return append_mapped(text[i], Mapping::lower, out);
  size_t before = i;
  while (before > 0 && case_ignorable(text[before - 1])) before--;
  size_t after = i + 1;
  while (after < text.size() && case_ignorable(text[after])) after++;
  const bool final_sigma = before > 0 && cased(text[before - 1]) && (after == text.size() || !cased(text[after]));
  out += final_sigma ? "\xCF\x82" : "\xCF\x83";  // ς : σ
}

}  // namespace

std::string python_upper(const std::string& s) {
  std::string out;
  for (const UChar32 c : code_points_of(s)) append_mapped(c, Mapping::upper, out);
  return out;
}

std::string python_lower(const std::string& s) {
  const std::vector<UChar32> text = code_points_of(s);
  std::string out;
  for (size_t i = 0; i < text.size(); i++) append_lower_at(text, i, out);
  return out;
}

std::string python_title(const std::string& s) {
  const std::vector<UChar32> text = code_points_of(s);
  std::string out;
  bool previous_is_cased = false;
  for (size_t i = 0; i < text.size(); i++) {
    if (previous_is_cased) append_lower_at(text, i, out);
    else append_mapped(text[i], Mapping::title, out);
    previous_is_cased = cased(text[i]);
  }
  return out;
}

std::string python_capitalize(const std::string& s) {
  const std::vector<UChar32> text = code_points_of(s);
  std::string out;
  for (size_t i = 0; i < text.size(); i++) {
    if (i == 0) append_mapped(text[i], Mapping::title, out);
    else append_lower_at(text, i, out);
  }
  return out;
}

std::string python_swapcase(const std::string& s) {
  const std::vector<UChar32> text = code_points_of(s);
  std::string out;
  for (size_t i = 0; i < text.size(); i++) {
    if (u_hasBinaryProperty(text[i], UCHAR_UPPERCASE)) append_lower_at(text, i, out);
    else if (u_hasBinaryProperty(text[i], UCHAR_LOWERCASE)) append_mapped(text[i], Mapping::upper, out);
    else append_code_point(text[i], out);
  }
  return out;
}

std::string python_casefold(const std::string& s) {
  std::string out;
  for (const UChar32 c : code_points_of(s)) append_mapped(c, Mapping::fold, out);
  return out;
}

namespace {

// str.islower (str.isupper with `lower` false): no character of the other case or titlecase,
// and at least one of this case.
bool all_one_case(const std::string& s, bool lower) {
  const UProperty same = lower ? UCHAR_LOWERCASE : UCHAR_UPPERCASE;
  const UProperty other = lower ? UCHAR_UPPERCASE : UCHAR_LOWERCASE;
  bool found = false;
  for (const UChar32 c : code_points_of(s)) {
    if (u_hasBinaryProperty(c, other) || u_istitle(c)) return false;
    found = found || u_hasBinaryProperty(c, same);
  }
  return found;
}

}  // namespace

bool python_islower(const std::string& s) { return all_one_case(s, true); }
bool python_isupper(const std::string& s) { return all_one_case(s, false); }

bool python_istitle(const std::string& s) {
  bool cased_found = false, previous_is_cased = false;
  for (const UChar32 c : code_points_of(s)) {
    const bool upper_or_title = u_hasBinaryProperty(c, UCHAR_UPPERCASE) || u_istitle(c);
    if (upper_or_title && previous_is_cased) return false;
    if (!upper_or_title && u_hasBinaryProperty(c, UCHAR_LOWERCASE) && !previous_is_cased) return false;
    previous_is_cased = upper_or_title || u_hasBinaryProperty(c, UCHAR_LOWERCASE);
    cased_found = cased_found || previous_is_cased;
  }
  return cased_found;
}

bool python_is_printable(char32_t c) {
  if (c == ' ') return true;
  switch (u_charType(UChar32(c))) {
    case U_CONTROL_CHAR: case U_FORMAT_CHAR: case U_SURROGATE: case U_PRIVATE_USE_CHAR: case U_UNASSIGNED:
    case U_LINE_SEPARATOR: case U_PARAGRAPH_SEPARATOR: case U_SPACE_SEPARATOR:
      return false;
    default:
      return true;
  }
}

bool python_is_class(const std::string& s, const std::string& name) {
  const auto in_class = [&name](UChar32 c) {
    const auto numeric = UNumericType(u_getIntPropertyValue(c, UCHAR_NUMERIC_TYPE));
    const bool decimal = numeric == U_NT_DECIMAL, digit = decimal || numeric == U_NT_DIGIT;
    const bool number = digit || numeric == U_NT_NUMERIC;
    if (name == "isalpha") return bool(u_isalpha(c));
    if (name == "isdecimal") return decimal;
    if (name == "isdigit") return digit;
    if (name == "isnumeric") return number;
    return number || bool(u_isalpha(c));  // isalnum
  };
  const std::vector<UChar32> text = code_points_of(s);
  return !text.empty() && std::all_of(text.begin(), text.end(), in_class);
}

}  // namespace llm
