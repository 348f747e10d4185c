// UserError: bad input from the user (config, data, checkpoint, CLI). Its message is one line
// naming the file, the key or offset, and what was expected; llm_train prints it and exits 2.
// Messages quote the user's bytes, so control characters in them (a newline in a JSON string, a
// carriage return, an escape sequence) are written as \n, \r or \xNN: the line a user reads is
// the line we wrote, whatever the input held.
#pragma once
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace llm {

inline std::string escape_control_characters(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\t' || (byte >= 0x20 && byte != 0x7f)) {
      out += c;
    } else if (c == '\n' || c == '\r') {
      out += c == '\n' ? "\\n" : "\\r";
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", byte);
      out += hex;
    }
  }
  return out;
}

struct UserError : std::runtime_error {
  explicit UserError(const std::string& message) : std::runtime_error(escape_control_characters(message)) {}
  // Several errors found at once (a config's unsupported keys): one line each.
  explicit UserError(const std::vector<std::string>& lines) : std::runtime_error(join(lines)) {}

 private:
  static std::string join(const std::vector<std::string>& lines) {
    std::string out;
    for (const std::string& line : lines) out += (out.empty() ? "" : "\n") + escape_control_characters(line);
    return out;
  }
};

constexpr int kUserErrorExitCode = 2;

}  // namespace llm
