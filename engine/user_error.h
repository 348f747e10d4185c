// UserError: bad input from the user (config, data, checkpoint, CLI). Its message is one line
// naming the file, the key or offset, and what was expected; llm_train prints it and exits 2.
// Messages quote the user's bytes, so control characters in them (a newline in a JSON string, a
// carriage return, an escape sequence) and bytes that are not UTF-8 are written as \n, \r or
// \xNN: the line a user reads is the line we wrote, whatever the input held. A quote can be as
// long as the input (nlohmann names the whole token it failed in: a 10 MB dataset line), so a
// line past kMaxMessageLine bytes keeps its head and tail and says how much it left out.
#pragma once
#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace llm {

constexpr size_t kMaxMessageLine = 1024;

// The length of the UTF-8 sequence that starts at text[i] (overlong forms and surrogates
// included: a terminal shows them as one character), or 0 where no whole sequence starts.
inline size_t utf8_sequence_length(const std::string& text, size_t i) {
  const auto lead = static_cast<unsigned char>(text[i]);
  const size_t n = lead < 0x80 ? 1 : (lead >> 5) == 6 ? 2 : (lead >> 4) == 14 ? 3 : (lead >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > text.size()) return 0;
  for (size_t k = 1; k < n; k++)
    if ((static_cast<unsigned char>(text[i + k]) >> 6) != 2) return 0;
  return n;
}

inline std::string printable_line(const std::string& text) {
  const size_t cut_from = text.size() > kMaxMessageLine ? kMaxMessageLine * 3 / 4 : text.size();
  const size_t cut_to = text.size() > kMaxMessageLine ? text.size() - kMaxMessageLine / 4 : text.size();
  std::string out;
  out.reserve(std::min(text.size(), kMaxMessageLine) + 32);
  for (size_t i = 0; i < text.size();) {
    if (i >= cut_from && i < cut_to) {  // only at a character's start: the head stays UTF-8
      out += " [... " + std::to_string(cut_to - i) + " bytes left out ...] ";
      i = cut_to;
      continue;
    }
    const char c = text[i];
    const auto byte = static_cast<unsigned char>(c);
    const size_t n = utf8_sequence_length(text, i);
    if (n > 1 || c == '\t' || (n == 1 && byte >= 0x20 && byte != 0x7f)) {
      out.append(text, i, n);
      i += n;
      continue;
    }
    if (c == '\n' || c == '\r') {
      out += c == '\n' ? "\\n" : "\\r";
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", byte);
      out += hex;
    }
    i++;
  }
  return out;
}

struct UserError : std::runtime_error {
  explicit UserError(const std::string& message) : std::runtime_error(printable_line(message)) {}
  // Several errors found at once (a config's unsupported keys): one line each.
  explicit UserError(const std::vector<std::string>& lines) : std::runtime_error(join(lines)) {}

 private:
  static std::string join(const std::vector<std::string>& lines) {
    std::string out;
    for (const std::string& line : lines) out += (out.empty() ? "" : "\n") + printable_line(line);
    return out;
  }
};

// A UserError every rank of a job meets at the same point, so none is left waiting in a
// collective: a check of the config and the job alone, or an error rank 0 met in work it does for
// all (the token cache) and shared. Rank 0 says it once and each rank exits, with no MPI_Abort
// (whose banner would bury the line).
struct EveryRankError : UserError {
  using UserError::UserError;
};

constexpr int kUserErrorExitCode = 2;

}  // namespace llm
