// Paths whose opening could block a reader forever: a FIFO or a socket waits for a writer, a
// device may never end. Every reader of a user's file asks first.
#pragma once
#include <filesystem>
#include <optional>
#include <string>

namespace llm {

// "a FIFO", "a socket" or "a device or other special file" for such a path; nullopt for a regular
// file, a directory or nothing there (each reader says what it expected of those).
inline std::optional<std::string> special_file_kind(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  switch (fs::status(path, ec).type()) {
    case fs::file_type::fifo: return "a FIFO";
    case fs::file_type::socket: return "a socket";
    case fs::file_type::block:
    case fs::file_type::character:
    case fs::file_type::unknown: return "a device or other special file";
    default: return std::nullopt;
  }
}

}  // namespace llm
