// Python's view of UTF-8 text, for what chat templates compute as Python does: code points
// (len, slices), str.isspace (strip, trim, split); and bytes decoded for display as Python does.
#pragma once
#include <algorithm>
#include <cstddef>
#include <string>

namespace llm {

// The character starting at bytes[i] as Unicode's well-formed sequences (its table 3-7) read
// it: its length, or 0 when no character starts there; then `prefix` is the length of the
// ill-formed subsequence there (the bytes that began a character, or one stray byte), Python's
// unit of replacement.
inline size_t utf8_char_length(const std::string& bytes, size_t i, size_t& prefix) {
  const unsigned char lead = static_cast<unsigned char>(bytes[i]);
  // The length a lead byte opens and the range of the byte after it (the others: 0x80-0xBF); 0
  // for a byte no character starts with.
  const size_t length = lead < 0x80 ? 1 : lead < 0xC2 ? 0 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : lead < 0xF5 ? 4 : 0;
  const unsigned char low = lead == 0xE0 ? 0xA0 : lead == 0xF0 ? 0x90 : 0x80;
  const unsigned char high = lead == 0xED ? 0x9F : lead == 0xF4 ? 0x8F : 0xBF;
  size_t valid = length > 0 ? 1 : 0;
  for (; valid < length && i + valid < bytes.size(); valid++) {
    const unsigned char b = static_cast<unsigned char>(bytes[i + valid]);
    if (b < (valid == 1 ? low : 0x80) || b > (valid == 1 ? high : 0xBF)) break;
  }
  prefix = std::max<size_t>(valid, 1);
  return length > 0 && valid == length ? length : 0;
}

// The code point starting at s[i] and its length in bytes. Text that is not UTF-8 (a template
// file read as bytes) reads as Python's errors="replace" would: each ill-formed subsequence one
// U+FFFD, its length never past the end of s.
inline char32_t decode_utf8(const std::string& s, size_t i, size_t& length) {
  size_t prefix = 0;
  length = utf8_char_length(s, i, prefix);
  if (length == 0) {
    length = prefix;
    return 0xFFFD;
  }
  const unsigned char lead = static_cast<unsigned char>(s[i]);
  char32_t c = length == 1 ? lead : lead & (0xFF >> (length + 1));
  for (size_t k = 1; k < length; k++) c = (c << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return c;
}

// Python's bytes.decode("utf-8", errors="replace"), as HF's tokenizers decode token bytes for
// display: each maximal ill-formed subsequence becomes one U+FFFD (a token, or a run of them, may
// end inside a character; the byte tokenizer's samples may be any bytes at all).
inline std::string decode_utf8_replacing(const std::string& bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0, prefix = 0; i < bytes.size();) {
    const size_t length = utf8_char_length(bytes, i, prefix);
    if (length > 0) out.append(bytes, i, length);
    else out += "\xEF\xBF\xBD";  // U+FFFD
    i += length > 0 ? length : prefix;
  }
  return out;
}

// Where Python's strict bytes.decode("utf-8") fails on `bytes` (as HF's text and csv loaders
// read a file): the offset of the first ill-formed byte, or npos for UTF-8 text.
inline size_t first_ill_formed_utf8(const std::string& bytes) {
  for (size_t i = 0, prefix = 0; i < bytes.size();) {
    const size_t length = utf8_char_length(bytes, i, prefix);
    if (length == 0) return i;
    i += length;
  }
  return std::string::npos;
}

// Python's str.isspace: ASCII and Unicode whitespace.
inline bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

// Whether s[i] starts a code point (is not a continuation byte).
inline bool starts_code_point(const std::string& s, size_t i) {
  return (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
}

// Narrows [begin, end) of s as Python's str.strip (lstrip: left only, rstrip: right only) would.
inline void python_strip_bounds(const std::string& s, size_t& begin, size_t& end, bool left,
                                bool right) {
  size_t length = 0;
  while (left && begin < end && is_python_space(decode_utf8(s, begin, length))) begin += length;
  while (right && end > begin) {
    size_t start = end - 1;
    while (start > begin && !starts_code_point(s, start)) start--;
    if (!is_python_space(decode_utf8(s, start, length)) || start + length != end) break;  // stray bytes stay
    end = start;
  }
}

// Python's str.strip() of s.
inline std::string python_strip(const std::string& s) {
  size_t begin = 0, end = s.size();
  python_strip_bounds(s, begin, end, true, true);
  return s.substr(begin, end - begin);
}

}  // namespace llm
