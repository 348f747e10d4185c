// UserError: bad input from the user (config, data, checkpoint, CLI). Its message is one line
// naming the file, the key or offset, and what was expected; llm_train prints it and exits 2.
// Messages quote the user's bytes, so control characters in them (a carriage return, an escape
// sequence) are written as \r or \xNN: the line a user reads is the line we wrote. A newline
// stays: a config refusing several keys says one line per key.
#pragma once
#include <cstdio>
#include <stdexcept>
#include <string>

namespace llm {

inline std::string escape_control_characters(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\t' || (byte >= 0x20 && byte != 0x7f)) {
      out += c;
    } else if (c == '\r') {
      out += "\\r";
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", byte);
      out += hex;
    }
  }
  return out;
}

// `text` quoted from the user (a YAML block scalar, a parser's message naming a character) with
// its newlines written as \n, so that the message quoting it stays one line.
inline std::string on_one_line(std::string text) {
  for (size_t at; (at = text.find('\n')) != std::string::npos;) text.replace(at, 1, "\\n");
  return text;
}

struct UserError : std::runtime_error {
  explicit UserError(const std::string& message) : std::runtime_error(escape_control_characters(message)) {}
};

constexpr int kUserErrorExitCode = 2;

}  // namespace llm
