// jinja2's lexer as transformers configures it: the source cut into text, {{ output }} and
// {% statement %} segments with whitespace control (`-`, `+`, trim_blocks, lstrip_blocks) and
// comments dropped; a tag's code cut into tokens.
#pragma once
#include <string>
#include <vector>

#include "io/jinja_value.h"

namespace llm::jinja {

[[noreturn]] void syntax_error(const std::string& where, int line, const std::string& what);

// A piece of the source between and inside tags, whitespace control applied.
struct Segment {
  enum class Kind { text, output, statement } kind;
  std::string code;
  int line;
};

std::vector<Segment> split_segments(const std::string& source, const std::string& where);

struct Token {
  enum class Kind { name, string, integer, number, op, end } kind;
  std::string text;
  Value value;
};

// One tag's code as tokens, an end token last; string literals unescaped as Python does.
std::vector<Token> tokenize(const std::string& code, const std::string& where, int line);

}  // namespace llm::jinja
