// defines: read_whole_file, throw_invalid_json, nul_byte_at (io/json_text.h)
#include "io/json_text.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/user_error.h"
#include "io/special_file.h"

namespace llm {

std::string read_whole_file(const std::string& path, const std::string& expected) {
  namespace fs = std::filesystem;
  if (std::optional<std::string> kind = special_file_kind(path)) throw UserError(path + ": expected " + expected + ", got " + *kind);
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  if (!in || fs::is_directory(path, ec))
    throw UserError(path + ": expected " + expected + ", got " +
                    (fs::is_directory(path, ec) ? "a directory"
                     : fs::exists(path, ec)     ? "an unreadable file"
                                                : "no such file"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void throw_invalid_json(const std::string& path, const std::string& expected, const std::string& why) {
  throw UserError(path + ": expected " + expected + ", got invalid JSON (" + why + ")");
}

size_t nul_byte_at(const std::string& text) { return text.find('\0'); }

bool json_nested_deeper_than(const std::string& text, int limit) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return false;
}

}  // namespace llm
