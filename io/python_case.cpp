// defines: python_upper, python_lower, python_title, python_capitalize, python_islower, python_isupper
#include "io/python_case.h"

#include <unicode/bytestream.h>
#include <unicode/casemap.h>
#include <unicode/stringoptions.h>
#include <unicode/uchar.h>
#include <unicode/utf8.h>

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

enum class Mapping { upper, lower, title };

// One code point's full case mapping (SpecialCasing's unconditional ones included), appended.
void append_mapped(UChar32 c, Mapping mapping, std::string& out) {
  uint8_t encoded[U8_MAX_LENGTH];
  int32_t length = 0;
  U8_APPEND_UNSAFE(encoded, length, c);
  const icu::StringPiece one(reinterpret_cast<const char*>(encoded), length);
  UErrorCode status = U_ZERO_ERROR;
  icu::StringByteSink<std::string> sink(&out);
  if (mapping == Mapping::upper) icu::CaseMap::utf8ToUpper("", 0, one, sink, nullptr, status);
  if (mapping == Mapping::lower) icu::CaseMap::utf8ToLower("", 0, one, sink, nullptr, status);
  if (mapping == Mapping::title)
    icu::CaseMap::utf8ToTitle("", U_TITLECASE_WHOLE_STRING | U_TITLECASE_NO_BREAK_ADJUSTMENT, nullptr, one,
                              sink, nullptr, status);
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

}  // namespace llm
