// defines: pyyaml_trailing_breaks (train/yaml_trailing_breaks.h)
#include "train/yaml_trailing_breaks.h"

#include <cctype>
#include <vector>

namespace llm {
namespace {

size_t trailing_newlines(const std::string& s) {
  size_t n = 0;
  while (n < s.size() && s[s.size() - 1 - n] == '\n') n++;
  return n;
}

// A quoted scalar opening at `open`: the line breaks between its last text and its closing quote.
std::optional<std::string> quoted(const std::string& text, size_t open, const std::string& value) {
  const char quote = text[open];
  size_t close = open + 1;
  for (; close < text.size(); close++) {
    if (quote == '"' && text[close] == '\\') close++;  // the escaped character
    else if (quote == '\'' && text[close] == '\'' && close + 1 < text.size() && text[close + 1] == '\'') close++;
    else if (text[close] == quote) break;
  }
  if (close >= text.size()) return std::nullopt;
  size_t end = close, breaks = 0;
  for (; end > open + 1; end--) {
    const char c = text[end - 1];
    if (c == '\n') breaks++;
    else if (c != ' ' && c != '\t' && c != '\r') break;
  }
  if (breaks < 2) return std::nullopt;
  const bool has_text = end > open + 1;
  // An escaped line break folds otherwise; an escaped \n ends the text in a newline of its own.
  if (has_text && quote == '"' && (text[end - 1] == '\\' || (text[end - 1] == 'n' && text[end - 2] == '\\')))
    return std::nullopt;
  const size_t newlines = trailing_newlines(value);
  if (has_text ? newlines == 0 || newlines == value.size() : newlines != value.size()) return std::nullopt;
  return value.substr(0, value.size() - newlines) + std::string(breaks - 1, '\n');
}

// One line of a block scalar: its leading spaces, whether it holds nothing else, whether a line
// break ends it.
struct BlockLine {
  size_t spaces = 0;
  bool blank = false, broken = false;
};

// The indentation of the block collection that holds a block scalar whose indicator is at `at`
// (PyYAML's self.indent): the column of the key on the indicator's line, or of the `-` of a
// sequence entry the scalar is; nullopt for a scalar that is the document itself.
std::optional<size_t> parent_indent(const std::string& text, size_t at) {
  const size_t newline = text.rfind('\n', at);
  const size_t line = newline == std::string::npos ? 0 : newline + 1;
  size_t column = text.find_first_not_of(' ', line);
  while (column + 1 < at && text[column] == '-' && text[column + 1] == ' ') {
    const size_t dash = column;
    column = text.find_first_not_of(' ', column + 1);
    if (column == at) return dash - line;
  }
  if (column >= at) return std::nullopt;
  return column - line;
}

// A folded block with keep chomping whose indicator `>` is at `at`: its last line break and the
// blank lines after it, each a newline.
std::optional<std::string> folded_keep(const std::string& text, size_t at, const std::string& value) {
  size_t i = at + 1, explicit_indent = 0;
  bool keep = false;
  for (; i < text.size() && (text[i] == '+' || text[i] == '-' || std::isdigit(static_cast<unsigned char>(text[i]))); i++) {
    if (std::isdigit(static_cast<unsigned char>(text[i]))) explicit_indent = size_t(text[i] - '0');
    keep = keep || text[i] == '+';
  }
  const size_t header_end = text.find('\n', i);
  const std::optional<size_t> parent = parent_indent(text, at);
  if (!keep || header_end == std::string::npos || !parent) return std::nullopt;
  std::vector<BlockLine> lines;
  // The block's indentation: the indicator's, else its first line of text's (`first`).
  size_t indent = *parent + explicit_indent, first = 0;
  bool found = explicit_indent > 0;
  for (size_t begin = header_end + 1; begin < text.size();) {
    size_t eol = text.find('\n', begin);
    BlockLine line;
    line.broken = eol != std::string::npos;
    if (!line.broken) eol = text.size();
    const size_t content_end = line.broken && eol > begin && text[eol - 1] == '\r' ? eol - 1 : eol;
    while (begin + line.spaces < content_end && text[begin + line.spaces] == ' ') line.spaces++;
    line.blank = begin + line.spaces == content_end;
    if (!found && !line.blank) {
      if (line.spaces <= *parent) return std::nullopt;  // an empty block
      indent = line.spaces;
      first = lines.size();
      found = true;
    }
    if (found && !line.blank && line.spaces < indent) break;  // the block has ended
    lines.push_back(line);
    begin = eol + 1;
  }
  if (!found) return std::nullopt;
  for (size_t k = 0; k < first; k++)  // PyYAML indents the block by its longest leading blank line
    if (lines[k].spaces > indent) return std::nullopt;
  size_t last = lines.size();  // the last content line: text, or spaces past the indentation
  for (size_t k = first; k < lines.size(); k++)
    if (!lines[k].blank || lines[k].spaces > indent) last = k;
  if (last == lines.size()) return std::nullopt;
  size_t kept = lines[last].broken ? 1 : 0;
  for (size_t k = last + 1; k < lines.size(); k++) kept += lines[k].broken;
  if (kept < 2 || trailing_newlines(value) != kept - 1) return std::nullopt;
  return value + "\n";
}

}  // namespace

std::optional<std::string> pyyaml_trailing_breaks(const std::string& text, size_t start, const std::string& value) {
  if (start >= text.size()) return std::nullopt;
  if (text[start] == '\'' || text[start] == '"') return quoted(text, start, value);
  if (text[start] == '>') return folded_keep(text, start, value);
  return std::nullopt;
}

}  // namespace llm
