// defines: read_whole_file, throw_invalid_json, nul_byte_at (io/json_text.h)
#include "io/json_text.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/user_error.h"

namespace llm {

std::string read_whole_file(const std::string& path, const std::string& expected) {
  namespace fs = std::filesystem;
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  if (!in || fs::is_directory(path, ec))
    throw UserError(path + ": expected " + expected + ", got " +
                    (fs::exists(path, ec) ? "an unreadable file" : "no such file"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void throw_invalid_json(const std::string& path, const std::string& expected, const std::string& why) {
  throw UserError(path + ": expected " + expected + ", got invalid JSON (" + why + ")");
}

size_t nul_byte_at(const std::string& text) { return text.find('\0'); }

}  // namespace llm
