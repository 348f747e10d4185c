// defines: syntax_error, split_segments, tokenize
#include "io/jinja_lex.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "engine/user_error.h"
#include "io/python_text.h"

namespace llm::jinja {

[[noreturn]] void syntax_error(const std::string& where, int line, const std::string& what) {
  throw UserError(where + ": chat template line " + std::to_string(line) + ": " + what);
}

namespace {

int count_lines(const std::string& s, size_t from, size_t to) {
  int n = 0;
  for (size_t i = from; i < to; i++) n += s[i] == '\n';
  return n;
}

// The end of the tag opened at `from` (the position of its closing "}}", "%}" or "#}"), string
// literals skipped so that a "%}" inside one does not close it, and, as jinja2's lexer balances
// brackets, no end while a (, [ or { is open: `{{{'a': 1}}}` prints a dict.
size_t find_tag_end(const std::string& src, size_t from, char kind) {
  const char close[3] = {kind == '{' ? '}' : kind, '}', 0};
  if (kind == '#') return src.find("#}", from);
  size_t open_brackets = 0;
  for (size_t i = from; i < src.size(); i++) {
    if (src[i] == '\'' || src[i] == '"') {
      const char quote = src[i];
      for (i++; i < src.size() && src[i] != quote; i++)
        if (src[i] == '\\') i++;
    } else if (open_brackets == 0 && src.compare(i, 2, close) == 0) {
      return i;
    } else if (src[i] == '(' || src[i] == '[' || src[i] == '{') {
      open_brackets++;
    } else if ((src[i] == ')' || src[i] == ']' || src[i] == '}') && open_brackets > 0) {
      open_brackets--;
    }
  }
  return std::string::npos;
}

std::string rstrip(std::string s) {
  size_t begin = 0, end = s.size();
  python_strip_bounds(s, begin, end, false, true);
  return s.substr(0, end);
}

bool is_raw_begin(const std::string& code) {
  size_t begin = 0, end = code.size();
  python_strip_bounds(code, begin, end, true, true);
  return code.compare(begin, end - begin, "raw") == 0;
}

// A {% raw %} block's text, kept as written up to its {% endraw %} (jinja2's whitespace control
// at both tags, lstrip_blocks before the end tag, trim_blocks after it, not after the start tag);
// returns where the text after the end tag starts.
size_t raw_block(const std::string& src, size_t data_begin, bool strip_after_begin, const std::string& where,
                 int line, std::vector<Segment>& out) {
  size_t length = 0;
  while (strip_after_begin && data_begin < src.size() && is_python_space(decode_utf8(src, data_begin, length)))
    data_begin += length;
  for (size_t at = src.find("{%", data_begin); at != std::string::npos; at = src.find("{%", at + 1)) {
    size_t i = at + 2;
    const char modifier = i < src.size() && (src[i] == '-' || src[i] == '+') ? src[i++] : 0;
    while (i < src.size() && is_python_space(decode_utf8(src, i, length))) i += length;
    if (src.compare(i, 6, "endraw") != 0) continue;
    i += 6;
    while (i < src.size() && is_python_space(decode_utf8(src, i, length))) i += length;
    const bool strip_after = src.compare(i, 3, "-%}") == 0;
    if (!strip_after && src.compare(i, 2, "%}") != 0) continue;
    std::string data = src.substr(data_begin, at - data_begin);
    if (modifier == '-') {
      data = rstrip(data);
    } else if (modifier != '+') {  // lstrip_blocks
      const size_t newline = data.rfind('\n');
      const size_t line_begin = newline == std::string::npos ? 0 : newline + 1;
      size_t blank_begin = line_begin, blank_end = data.size();
      python_strip_bounds(data, blank_begin, blank_end, true, false);
      const bool line_start = newline != std::string::npos || (data_begin > 0 && src[data_begin - 1] == '\n');
      if (line_start && blank_begin == data.size()) data.erase(line_begin);
    }
    if (!data.empty()) out.push_back({Segment::Kind::text, data, line});
    size_t after = i + (strip_after ? 3 : 2);
    if (strip_after) {
      while (after < src.size() && is_python_space(decode_utf8(src, after, length))) after += length;
    } else if (after < src.size() && src[after] == '\n') {
      after++;  // trim_blocks
    }
    return after;
  }
  syntax_error(where, line, "'raw' is never closed (expected 'endraw')");
}


// Python's escapes in a string literal (jinja2 decodes them as unicode-escape).
std::string unescape(const std::string& s, const std::string& where, int line) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    const char* const simple = "n\nt\tr\r\\\\''\"\"a\ab\bf\fv\v";  // escape, character
    const char* found = nullptr;
    for (const char* p = simple; *p; p += 2)
      if (*p == c) found = p;
    if (c == '\n') {  // a line continuation: nothing
    } else if (found) {
      out += found[1];
    } else if (c == '0') {
      out += '\0';
    } else if (c == 'x' || c == 'u' || c == 'U') {
      const size_t digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
      const std::string hex = s.substr(i + 1, digits);
      if (hex.size() != digits || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
        syntax_error(where, line, "bad \\" + std::string(1, c) + " escape in a string");
      const unsigned long cp = std::stoul(hex, nullptr, 16);
      if (cp > 0x10FFFF) syntax_error(where, line, "escape beyond U+10FFFF in a string");
      if (cp < 0x80) {
        out += char(cp);
      } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
      } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
      }
      i += digits;
    } else {
      out += '\\';  // Python keeps an unknown escape as written
      out += c;
    }
  }
  return out;
}

// jinja2's lexer first joins the source's lines with "\n", whatever ended them (\r\n, \r, \n),
// and, keep_trailing_newline being off, drops the one line break that ends the source: a template
// file's last newline is no output.
std::string jinja_lines(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); i++) {
    out += source[i] == '\r' ? '\n' : source[i];
    if (source[i] == '\r' && i + 1 < source.size() && source[i + 1] == '\n') i++;
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

std::vector<Segment> split_segments(const std::string& source, const std::string& where) {
  const std::string src = jinja_lines(source);
  std::vector<Segment> out;
  size_t pos = 0;
  int line = 1;
  bool strip_next = false, line_starting = true;
  while (pos <= src.size()) {
    size_t open = pos;
    while ((open = src.find('{', open)) != std::string::npos &&
           (open + 1 >= src.size() || !std::strchr("{%#", src[open + 1])))
      open++;
    std::string text = src.substr(pos, open == std::string::npos ? std::string::npos : open - pos);
    if (strip_next) {
      size_t begin = 0, end = text.size();
      python_strip_bounds(text, begin, end, true, false);
      text.erase(0, begin);
    }
    const int text_line = line;
    if (open == std::string::npos) {
      if (!text.empty()) out.push_back({Segment::Kind::text, text, text_line});
      break;
    }
    line += count_lines(src, pos, open);
    const char kind = src[open + 1];
    const char modifier = open + 2 < src.size() ? src[open + 2] : 0;
    if (modifier == '-') {
      text = rstrip(text);
    } else if (kind != '{' && modifier != '+') {  // lstrip_blocks
      const size_t newline = text.rfind('\n');
      const size_t line_begin = newline == std::string::npos ? 0 : newline + 1;
      size_t blank_end = text.size(), blank_begin = line_begin;  // jinja2's \s: Unicode spaces too
      python_strip_bounds(text, blank_begin, blank_end, true, false);
      if ((newline != std::string::npos || line_starting) && blank_begin == text.size()) text.erase(line_begin);
    }
    if (!text.empty()) out.push_back({Segment::Kind::text, text, text_line});
    const size_t code_begin = open + 2 + (modifier == '-' || modifier == '+');
    const size_t close = find_tag_end(src, code_begin, kind);
    if (close == std::string::npos)
      syntax_error(where, line, std::string("unclosed tag '{") + kind + "'");
    const char before_close = close > code_begin ? src[close - 1] : 0;
    strip_next = before_close == '-';
    const size_t code_end = close - (before_close == '-' || (before_close == '+' && kind != '{'));
    if (kind == '%' && is_raw_begin(src.substr(code_begin, code_end - code_begin))) {
      if (before_close == '+') syntax_error(where, line, "Encountered unknown tag 'raw'");
      pos = raw_block(src, close + 2, strip_next, where, line, out);
      line += count_lines(src, open, pos);
      line_starting = src[pos - 1] == '\n';
      strip_next = false;
      continue;
    }
    if (kind != '#')
      out.push_back({kind == '{' ? Segment::Kind::output : Segment::Kind::statement,
                     src.substr(code_begin, code_end - code_begin), line});
    size_t after = close + 2;
    if (kind != '{' && !strip_next && before_close != '+' && after < src.size() && src[after] == '\n')
      after++;  // trim_blocks
    line += count_lines(src, open, after);
    line_starting = src[after - 1] == '\n';
    pos = after;
  }
  return out;
}

std::vector<Token> tokenize(const std::string& code, const std::string& where, int line) {
  std::vector<Token> tokens;
  size_t i = 0;
  auto is_name_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  while (i < code.size()) {
    const char c = code[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      i++;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < code.size() && is_name_char(code[j])) j++;
      tokens.push_back({Token::Kind::name, code.substr(i, j - i), {}});
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t j = i;
      while (j < code.size() && (std::isdigit(static_cast<unsigned char>(code[j])) || code[j] == '_')) j++;
      bool is_float = false;
      if (j + 1 < code.size() && code[j] == '.' && std::isdigit(static_cast<unsigned char>(code[j + 1]))) {
        is_float = true;
        for (j++; j < code.size() && std::isdigit(static_cast<unsigned char>(code[j])); j++) {}
      }
      if (j < code.size() && (code[j] == 'e' || code[j] == 'E')) {
        size_t k = j + 1;
        if (k < code.size() && (code[k] == '+' || code[k] == '-')) k++;
        if (k < code.size() && std::isdigit(static_cast<unsigned char>(code[k]))) {
          is_float = true;
          for (j = k; j < code.size() && std::isdigit(static_cast<unsigned char>(code[j])); j++) {}
        }
      }
      std::string digits = code.substr(i, j - i);
      digits.erase(std::remove(digits.begin(), digits.end(), '_'), digits.end());
      errno = 0;
      Token t{is_float ? Token::Kind::number : Token::Kind::integer, digits, {}};
      t.value = is_float ? Value::from(std::strtod(digits.c_str(), nullptr))
                         : Value::from(int64_t(std::strtoll(digits.c_str(), nullptr, 10)));
      if (errno == ERANGE) syntax_error(where, line, "number out of range: " + digits);
      tokens.push_back(std::move(t));
      i = j;
    } else if (c == '\'' || c == '"') {
      size_t j = i + 1;
      while (j < code.size() && code[j] != c) j += code[j] == '\\' ? 2 : 1;
      if (j >= code.size()) syntax_error(where, line, "unterminated string");
      Token t{Token::Kind::string, code.substr(i, j + 1 - i), {}};
      t.value = Value::from(unescape(code.substr(i + 1, j - i - 1), where, line));
      tokens.push_back(std::move(t));
      i = j + 1;
    } else {
      static const char* const two[] = {"**", "//", "==", "!=", "<=", ">="};
      std::string op(1, c);
      for (const char* t : two)
        if (code.compare(i, 2, t) == 0) op = t;
      if (op.size() == 1 && !std::strchr("+-*/%~<>=.,:|()[]{}", c))
        syntax_error(where, line, std::string("unexpected character '") + c + "'");
      tokens.push_back({Token::Kind::op, op, {}});
      i += op.size();
    }
  }
  tokens.push_back({Token::Kind::end, "", {}});
  return tokens;
}

}  // namespace llm::jinja
